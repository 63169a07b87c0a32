// The fault-injecting proxy (test/support/fault-proxy.ts) against the real API
// server: it passes calls through, and each fault does what it says. Plain
// node:http2 / node:https clients here, so the proxy is tested on its own,
// not through the store's retries.
import * as http2 from 'node:http2';
import * as https from 'node:https';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CoreV1Api } from '@kubernetes/client-node';
import { createKV } from '@k8s-kv/core';
import { adminKubeConfig, kubeconfigPath } from '../setup/cluster.ts';
import { useProxiedNamespace } from '../support/cluster-proxy.ts';

const env = useProxiedNamespace('fault-proxy');
const ca = (): Buffer => readFileSync(join(dirname(kubeconfigPath()), 'pki', 'ca.crt'));
const token = (): string => adminKubeConfig().getCurrentUser()!.token!;
const core = (): CoreV1Api => adminKubeConfig().makeApiClient(CoreV1Api);

/** An HTTP/2 session to the proxy, as undici would open one. */
function connect(): http2.ClientHttp2Session {
  const session = http2.connect(env.proxied.proxy.url, { ca: ca() });
  session.on('error', () => undefined);
  return session;
}

interface Answer {
  status?: number;
  body?: string;
  error?: Error & { code?: string };
}

/** One request on a session; resolves with the answer or the error that ended it, or `undefined` after `timeoutMs`. */
function call(session: http2.ClientHttp2Session, method: string, path: string, body?: unknown, timeoutMs = 10_000): Promise<Answer | undefined> {
  return new Promise((resolve) => {
    const headers: http2.OutgoingHttpHeaders = { ':method': method, ':path': path, authorization: `Bearer ${token()}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = method === 'PATCH' ? 'application/merge-patch+json' : 'application/json';
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(headers, { endStream: body === undefined });
    } catch (error) {
      resolve({ error: error as Error });
      return;
    }
    const timer = setTimeout(() => resolve(undefined), timeoutMs);
    let status: number | undefined;
    let text = '';
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (d: Buffer) => (text += d));
    stream.on('end', () => {
      clearTimeout(timer);
      resolve(status === undefined ? { error: Object.assign(new Error('closed without an answer'), { code: 'NO_ANSWER' }) } : { status, body: text });
    });
    stream.on('error', (error) => {
      clearTimeout(timer);
      resolve({ error });
    });
    stream.on('close', () => {
      clearTimeout(timer);
      if (stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR)
        resolve({ status, error: Object.assign(new Error(`stream reset ${stream.rstCode}`), { code: 'RST_STREAM' }) });
    });
    if (body !== undefined) stream.end(JSON.stringify(body));
  });
}

function ping(session: http2.ClientHttp2Session, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    session.ping((error) => {
      clearTimeout(timer);
      resolve(!error);
    });
  });
}

const cmPath = (name = ''): string => `/api/v1/namespaces/${env.ns.name}/configmaps${name ? `/${name}` : ''}`;

async function createConfigMap(name: string): Promise<void> {
  await core().createNamespacedConfigMap({ namespace: env.ns.name, body: { metadata: { name }, data: { n: '0' } } });
}

async function readN(name: string): Promise<string | undefined> {
  try {
    return (await core().readNamespacedConfigMap({ name, namespace: env.ns.name })).data?.n;
  } catch {
    return undefined;
  }
}

describe('fault proxy (real API server)', () => {
  it('passes calls through over HTTP/2 and HTTP/1.1, watches included', async () => {
    const session = connect();
    const answer = await call(session, 'GET', cmPath());
    expect(answer?.status).toBe(200);
    expect(session.alpnProtocol).toBe('h2');
    session.close();

    const h1 = await new Promise<number | undefined>((resolve, reject) => {
      https
        .get(`${env.proxied.proxy.url}${cmPath()}`, { ca: ca(), headers: { authorization: `Bearer ${token()}` }, agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode);
        })
        .on('error', reject);
    });
    expect(h1).toBe(200);

    // The store through the proxy: writes, reads, and its watch cache sees another writer.
    const kv = createKV({ bucket: 'through-proxy', namespace: env.ns.name, kubeConfig: env.proxied.kubeConfig() });
    const direct = createKV({ bucket: 'through-proxy', namespace: env.ns.name, kubeConfig: adminKubeConfig(), cache: false });
    await kv.put('a', '1');
    expect(await kv.getText('a')).toBe('1');
    await direct.put('b', '2');
    await expect.poll(() => kv.getText('b')).toBe('2');
    await Promise.all([kv.close(), direct.close()]);
    expect(env.proxied.proxy.log).toEqual([]);
  });

  it('lose-answer: the server applies the request, the connection is cut before the answer', async () => {
    await createConfigMap('lost');
    env.proxied.proxy.inject({ match: { method: 'PATCH', path: '/lost' }, fault: { kind: 'lose-answer' } });
    const session = connect();
    const answer = await call(session, 'PATCH', cmPath('lost'), { data: { n: '1' } });
    expect(answer?.error).toBeDefined();
    expect(answer?.status).toBeUndefined();
    expect(session.destroyed || session.closed).toBe(true);
    expect(await readN('lost')).toBe('1');
    expect(env.proxied.proxy.log.at(-1)).toMatchObject({ fault: 'lose-answer', status: 200, request: expect.stringContaining('PATCH') });
  });

  it('lose-answer with cut "stream": only that stream is reset; the connection keeps serving', async () => {
    await createConfigMap('lost-stream');
    env.proxied.proxy.inject({ match: { method: 'PATCH' }, fault: { kind: 'lose-answer', cut: 'stream' } });
    const session = connect();
    const answer = await call(session, 'PATCH', cmPath('lost-stream'), { data: { n: '1' } });
    expect(answer?.error?.code).toMatch(/^(ERR_HTTP2_STREAM_ERROR|RST_STREAM)$/);
    expect(await readN('lost-stream')).toBe('1');
    expect((await call(session, 'GET', cmPath('lost-stream')))?.status).toBe(200);
    session.close();
  });

  it('hits the nth matching request only, and the seeded random mode repeats its draws', async () => {
    const session = connect();
    env.proxied.proxy.inject({ match: { method: 'GET', path: 'nth-probe' }, nth: 3, fault: { kind: 'respond', status: 503 } });
    const statuses: Array<number | undefined> = [];
    for (let i = 0; i < 4; i++) statuses.push((await call(session, 'GET', `${cmPath()}?labelSelector=nth-probe`))?.status);
    expect(statuses).toEqual([200, 200, 503, 200]);

    // Which of 30 requests the random mode hits, for a seed.
    const sequence = async (seed: number): Promise<number[]> => {
      const hits: number[] = [];
      const before = env.proxied.proxy.requests;
      const listener = (): void => void hits.push(env.proxied.proxy.requests - before);
      env.proxied.proxy.on('fault', listener);
      env.proxied.proxy.randomFaults({ seed, rates: { loseAnswerStream: 0.3 }, match: { path: 'random-probe' } });
      for (let i = 0; i < 30; i++) await call(session, 'GET', `${cmPath()}?labelSelector=random-probe`);
      env.proxied.proxy.clearFaults();
      env.proxied.proxy.off('fault', listener);
      return hits;
    };
    const a = await sequence(7);
    const b = await sequence(7);
    const c = await sequence(8);
    expect(a.length).toBeGreaterThan(0);
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    session.close();
  });

  it('reset: the connection is reset before the request is forwarded; the server never sees it', async () => {
    env.proxied.proxy.inject({ match: { method: 'POST' }, fault: { kind: 'reset' } });
    const session = connect();
    const answer = await call(session, 'POST', cmPath(), { metadata: { name: 'never-created' } });
    expect(answer?.error).toBeDefined();
    expect(await readN('never-created')).toBeUndefined();
    expect(env.proxied.proxy.log.at(-1)).toMatchObject({ fault: 'reset' });
  });

  it('stall: the connection goes silent and stays open (PINGs unanswered); a new connection is served', async () => {
    env.proxied.proxy.inject({ match: { path: 'stall-probe' }, fault: { kind: 'stall' } });
    const session = connect();
    expect(await call(session, 'GET', `${cmPath()}?labelSelector=stall-probe`, undefined, 1500)).toBeUndefined();
    expect(await ping(session, 1500)).toBe(false);
    expect(await call(session, 'GET', cmPath(), undefined, 1000)).toBeUndefined();
    expect(session.destroyed).toBe(false);
    expect(env.proxied.proxy.isOpen(env.proxied.proxy.log.at(-1)!.connection)).toBe(true);
    const fresh = connect();
    expect((await call(fresh, 'GET', cmPath()))?.status).toBe(200);
    fresh.close();
    session.destroy();
  });

  it('hold: the request is never answered, the connection stays healthy', async () => {
    env.proxied.proxy.inject({ match: { path: 'hold-probe' }, fault: { kind: 'hold' } });
    const session = connect();
    expect(await call(session, 'GET', `${cmPath()}?labelSelector=hold-probe`, undefined, 1500)).toBeUndefined();
    expect(await ping(session, 3000)).toBe(true);
    expect((await call(session, 'GET', cmPath()))?.status).toBe(200);
    session.destroy();
  });

  it('corrupt: one flipped byte in a TLS record of the answer fails the client with an SSL error', async () => {
    env.proxied.proxy.inject({ match: { path: 'corrupt-probe' }, fault: { kind: 'corrupt' } });
    const session = connect();
    const sessionError = new Promise<Error & { code?: string }>((resolve) => session.once('error', resolve));
    const answer = await call(session, 'GET', `${cmPath()}?labelSelector=corrupt-probe`);
    expect(answer?.error).toBeDefined();
    expect((await sessionError).code).toMatch(/^ERR_SSL_/);
    expect(env.proxied.proxy.log.at(-1)).toMatchObject({ fault: 'corrupt', status: 200 });
  });

  it('corrupt "to-server": a flipped byte in the client\'s next TLS record draws a bad_record_mac alert', async () => {
    env.proxied.proxy.inject({ match: { path: 'corrupt-in-probe' }, fault: { kind: 'corrupt', direction: 'to-server' } });
    const session = connect();
    expect((await call(session, 'GET', `${cmPath()}?labelSelector=corrupt-in-probe`))?.status).toBe(200);
    // The next request's record is the one flipped. (node:http2 fails the stream but, here, leaves the session neither closed nor errored.)
    expect((await call(session, 'GET', cmPath()))?.error?.code).toMatch(/^ERR_SSL_SSL(V3|\/TLS)_ALERT_BAD_RECORD_MAC$/);
    session.destroy();
  });

  it("respond: answers in the server's place (e.g. 429 with Retry-After) without forwarding", async () => {
    env.proxied.proxy.inject({
      match: { method: 'POST' },
      fault: { kind: 'respond', status: 429, headers: { 'retry-after': '1' }, body: '{"kind":"Status","code":429}' },
    });
    const session = connect();
    const answer = await call(session, 'POST', cmPath(), { metadata: { name: 'refused' } });
    expect(answer?.status).toBe(429);
    expect(await readN('refused')).toBeUndefined();
    session.close();
  });

  it('expire-watch: a watch passes n events, then ends with the 410 Expired ERROR event', async () => {
    await createConfigMap('watched');
    env.proxied.proxy.inject({ match: { watch: true, path: 'watched' }, fault: { kind: 'expire-watch', afterEvents: 1 } });
    const session = connect();
    const answer = await call(session, 'GET', `${cmPath()}?watch=true&fieldSelector=metadata.name%3Dwatched&resourceVersion=0`);
    const lines = answer!
      .body!.trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; object: { code?: number; reason?: string } });
    expect(lines.map((l) => l.type)).toEqual(['ADDED', 'ERROR']);
    expect(lines[1]!.object).toMatchObject({ code: 410, reason: 'Expired' });
    session.close();
  });

  it('connection faults at once: resetConnections, corruptNextRecord, stallConnections', async () => {
    const a = connect();
    expect((await call(a, 'GET', cmPath()))?.status).toBe(200);
    const closed = new Promise((resolve) => a.once('close', resolve));
    expect(env.proxied.proxy.resetConnections()).toBeGreaterThanOrEqual(1);
    await closed;

    const b = connect();
    expect((await call(b, 'GET', cmPath()))?.status).toBe(200);
    const sslError = new Promise<Error & { code?: string }>((resolve) => b.once('error', resolve));
    env.proxied.proxy.corruptNextRecord();
    await call(b, 'GET', cmPath());
    expect((await sslError).code).toMatch(/^ERR_SSL_/);

    const c = connect();
    expect((await call(c, 'GET', cmPath()))?.status).toBe(200);
    env.proxied.proxy.stallConnections();
    expect(await ping(c, 1000)).toBe(false);
    c.destroy();
    expect(env.proxied.proxy.counts()).toMatchObject({
      'reset-connection': expect.any(Number),
      'corrupt-record': expect.any(Number),
      'stall-connection': expect.any(Number),
    });
  });
});
