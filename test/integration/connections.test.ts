// Broken, damaged and silent connections, through the fault proxy
// (test/support/fault-proxy.ts) in front of the real API server: a broken or
// timed-out connection is dropped and the next call opens a new one; transport
// errors are retryable; a call returns within the budget its options give;
// the watch notices a dead connection within seconds, not minutes.
import { describe, expect, it } from 'vitest';
import { createKV, KVError, type KV, type RetryEvent } from '@k8s-kv/core';
import { adminKubeConfig } from '../setup/cluster.ts';
import { useProxiedNamespace } from '../support/cluster-proxy.ts';

const env = useProxiedNamespace('connections');

/** The bucket as the server holds it (read past the proxy). */
async function truth(bucket: string): Promise<Record<string, string>> {
  const direct = createKV({ bucket, namespace: env.ns.name, kubeConfig: adminKubeConfig(), cache: false });
  try {
    const values = await direct.list();
    return Object.fromEntries([...values].map(([k, v]) => [k, Buffer.from(v).toString()]));
  } finally {
    await direct.close();
  }
}

/** A store (budget 3 s, cache off) whose every request to `bucket` the proxy forwards and never answers; the retries it was told of. */
function heldStore(bucket: string, options: { requestTimeoutMs?: number }): { kv: KV; events: RetryEvent[] } {
  const events: RetryEvent[] = [];
  const kv = createKV({
    bucket,
    namespace: env.ns.name,
    kubeConfig: env.proxied.kubeConfig(),
    cache: false,
    ...options,
    retry: { maxElapsedMs: 3_000, onRetry: (e) => events.push(e) },
  });
  env.proxied.proxy.inject({ match: { path: `/configmaps/${bucket}` }, fault: { kind: 'hold' }, times: Number.POSITIVE_INFINITY });
  return { kv, events };
}

async function timed<T>(run: () => Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const started = Date.now();
  try {
    const value = await run();
    return { ms: Date.now() - started, value };
  } catch (error) {
    return { ms: Date.now() - started, error };
  }
}

describe('a damaged TLS record (D3)', () => {
  for (const [direction, cache] of [
    ['to-server', true],
    ['to-server', false],
    ['to-client', true],
    ['to-client', false],
  ] as const) {
    it(`${direction}, cache ${cache ? 'on' : 'off'}: costs a retry on a new connection; every later call works`, async () => {
      const bucket = `tls-${direction}-${cache ? 'cached' : 'direct'}`;
      const kv = createKV({ bucket, namespace: env.ns.name, kubeConfig: env.proxied.kubeConfig(), cache, retry: { maxElapsedMs: 10_000 } });
      try {
        await kv.put('warm', 'up');
        const opened = env.proxied.proxy.connectionsOpened;
        env.proxied.proxy.inject({ match: { method: 'PATCH', path: bucket }, fault: { kind: 'corrupt', direction } });
        // Several calls in flight on the one HTTP/2 connection when it breaks, then more after.
        await Promise.all(Array.from({ length: 6 }, (_, i) => kv.put(`a${i}`, String(i))));
        await Promise.all(Array.from({ length: 6 }, (_, i) => kv.put(`b${i}`, String(i))));
        expect(await kv.getText('a0')).toBe('0');
        expect(env.proxied.proxy.log.filter((e) => e.request?.includes(bucket))).toHaveLength(1);
        expect(env.proxied.proxy.connectionsOpened).toBeGreaterThan(opened);
        const stored = await truth(bucket);
        for (let i = 0; i < 6; i++) expect([stored[`a${i}`], stored[`b${i}`]]).toEqual([String(i), String(i)]);
      } finally {
        await kv.close();
      }
    });
  }

  it('a reset connection costs a retry, also for the watch: the cache keeps up with another writer', async () => {
    const bucket = 'reset-watch';
    const kv = createKV({ bucket, namespace: env.ns.name, kubeConfig: env.proxied.kubeConfig(), retry: { maxElapsedMs: 10_000 } });
    const direct = createKV({ bucket, namespace: env.ns.name, kubeConfig: adminKubeConfig(), cache: false });
    try {
      await kv.put('a', '1');
      expect(await kv.getText('a')).toBe('1'); // the watch runs
      env.proxied.proxy.resetConnections();
      await direct.put('b', '2');
      await expect.poll(() => kv.getText('b'), { timeout: 10_000 }).toBe('2');
      await kv.put('c', '3');
      expect(await truth(bucket)).toMatchObject({ a: '1', b: '2', c: '3' });
    } finally {
      await Promise.all([kv.close(), direct.close()]);
    }
  });
});

describe('a silent (half-open) connection and slow answers (D4)', () => {
  it('a call on a connection gone silent is cut at requestTimeoutMs and retried on a new connection', async () => {
    const bucket = 'silent';
    const kv = createKV({
      bucket,
      namespace: env.ns.name,
      kubeConfig: env.proxied.kubeConfig(),
      cache: false,
      requestTimeoutMs: 1_000,
      retry: { maxElapsedMs: 5_000 },
    });
    try {
      await kv.put('a', '1');
      const opened = env.proxied.proxy.connectionsOpened;
      expect(env.proxied.proxy.stallConnections()).toBeGreaterThan(0);
      const put = await timed(() => Promise.all(Array.from({ length: 4 }, (_, i) => kv.put(`k${i}`, String(i)))));
      expect(put.error).toBeUndefined();
      expect(put.ms).toBeLessThan(5_000); // within the budget the options give (retry.maxElapsedMs)
      expect(env.proxied.proxy.connectionsOpened).toBeGreaterThan(opened);
      const later = await timed(() => kv.getText('k3'));
      expect(later.value).toBe('3');
      expect(later.ms).toBeLessThan(1_000);
    } finally {
      await kv.close();
    }
  });

  it('a call never outlives retry.maxElapsedMs: with every answer held, it fails in time, naming the server, retryable', async () => {
    // requestTimeoutMs stays at its 30 s default: the budget alone must end the call.
    const { kv, events } = heldStore('held', {});
    try {
      const get = await timed(() => kv.get('a'));
      expect(get.error).toBeInstanceOf(KVError);
      expect(get.error).toMatchObject({ code: 'KV_UNAVAILABLE', retryable: true, server: env.proxied.proxy.url });
      expect((get.error as Error).message).toContain(env.proxied.proxy.url);
      expect((get.error as Error).message).toContain('retry.maxElapsedMs');
      expect(get.ms).toBeGreaterThanOrEqual(2_900);
      expect(get.ms).toBeLessThan(3_000 + 1_500);
      // The budget cut the one attempt: nothing was left for a retry.
      expect(events).toEqual([]);
    } finally {
      env.proxied.proxy.clearFaults();
      await kv.close();
    }
  });

  it('the budget bounds the whole call, not each request: clear() (a read, then a write) on a slow server ends at retry.maxElapsedMs', async () => {
    const bucket = 'slow-clear';
    const kv = createKV({ bucket, namespace: env.ns.name, kubeConfig: env.proxied.kubeConfig(), cache: false, retry: { maxElapsedMs: 2_000 } });
    try {
      await kv.putMany([
        ['a', '1'],
        ['b', '2'],
      ]);
      // Each request takes 1.5 s: the read fits in the budget, the write after it does not.
      env.proxied.proxy.inject({ match: { path: `/configmaps/${bucket}` }, fault: { kind: 'delay', ms: 1_500 }, times: Number.POSITIVE_INFINITY });
      const clear = await timed(() => kv.clear());
      expect(clear.error).toMatchObject({ code: 'KV_UNAVAILABLE', retryable: true });
      expect(clear.ms).toBeLessThan(2_000 + 800);
    } finally {
      env.proxied.proxy.clearFaults();
      await kv.close();
    }
  });

  it('the watch is background work: the budget of the call that started it does not bind its reconnects', async () => {
    const bucket = 'watch-after-budget';
    const errors: unknown[] = [];
    const kv = createKV({
      bucket,
      namespace: env.ns.name,
      kubeConfig: env.proxied.kubeConfig(),
      retry: { maxElapsedMs: 1_000 },
      onError: (e) => errors.push(e),
    });
    const direct = createKV({ bucket, namespace: env.ns.name, kubeConfig: adminKubeConfig(), cache: false });
    const seen: string[] = [];
    try {
      await direct.put('a', '1');
      await kv.watch((event) => seen.push(event.key)); // started inside a call with a 1 s budget
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      // After that budget ended, the watch must reconnect and (410 Gone) relist.
      env.proxied.proxy.inject({ match: { watch: true, path: bucket }, fault: { kind: 'expire-watch' } });
      env.proxied.proxy.resetConnections();
      await direct.put('b', '2');
      await expect.poll(() => seen, { timeout: 10_000 }).toContain('b');
      // The cut itself is reported (onError); a loop bound by the spent budget would report that it had no time left.
      expect(errors.map(String).filter((message) => message.includes('budget'))).toEqual([]);
    } finally {
      await Promise.all([kv.close(), direct.close()]);
    }
  });

  it('with requestTimeoutMs below the budget, held answers are retried (onRetry says so) until the budget ends', async () => {
    const { kv, events } = heldStore('held-retried', { requestTimeoutMs: 700 });
    try {
      const get = await timed(() => kv.get('a'));
      expect(get.error).toMatchObject({ code: 'KV_UNAVAILABLE' });
      expect(get.ms).toBeLessThan(3_000 + 1_500);
      expect(events.length).toBeGreaterThanOrEqual(2);
      expect(events[0]).toMatchObject({ attempt: 1, budgetMs: 3_000, server: env.proxied.proxy.url, reason: expect.stringContaining('no answer within') });
    } finally {
      env.proxied.proxy.clearFaults();
      await kv.close();
    }
  });

  it('the watch notices its connection went silent within seconds and resumes on a new one', async () => {
    const bucket = 'silent-watch';
    const kv: KV = createKV({ bucket, namespace: env.ns.name, kubeConfig: env.proxied.kubeConfig(), requestTimeoutMs: 1_500 });
    const direct = createKV({ bucket, namespace: env.ns.name, kubeConfig: adminKubeConfig(), cache: false });
    try {
      await kv.put('a', '1');
      expect(await kv.getText('a')).toBe('1'); // the watch runs
      const opened = env.proxied.proxy.connectionsOpened;
      env.proxied.proxy.stallConnections();
      await direct.put('b', '2');
      // The server ends a quiet watch after 240 s; before the fix, silence went unnoticed for 270 s.
      await expect.poll(() => env.proxied.proxy.connectionsOpened, { timeout: 15_000 }).toBeGreaterThan(opened);
      await expect.poll(() => kv.getText('b'), { timeout: 15_000 }).toBe('2');
    } finally {
      await Promise.all([kv.close(), direct.close()]);
    }
  });
});

describe('a lost answer to a put', () => {
  it('is repeated, so the put may land twice: a write made between the two landings is overwritten (use update when that matters)', async () => {
    const bucket = 'put-twice';
    const kv = createKV({ bucket, namespace: env.ns.name, kubeConfig: env.proxied.kubeConfig(), cache: false });
    const other = createKV({ bucket, namespace: env.ns.name, kubeConfig: adminKubeConfig(), cache: false });
    try {
      await kv.put('warm', 'up');
      // The put's first patch lands and its answer is lost; its repeat is held back a second.
      env.proxied.proxy.inject({ match: { method: 'PATCH', path: bucket }, nth: 1, fault: { kind: 'lose-answer' } });
      env.proxied.proxy.inject({ match: { method: 'PATCH', path: bucket }, nth: 2, fault: { kind: 'delay', ms: 1_000 } });
      const put = kv.put('token', 'fresh');
      await expect.poll(() => other.getText('token'), { timeout: 5_000, interval: 20 }).toBe('fresh');
      // Another writer consumes the token in between...
      expect(Buffer.from((await other.update('token', (v) => (v && Buffer.from(v).toString() === 'fresh' ? 'used' : undefined)))!).toString()).toBe('used');
      await put;
      // ...and the repeated put lands after it.
      expect(await other.getText('token')).toBe('fresh');
      expect(env.proxied.proxy.log.filter((e) => e.request?.includes(bucket)).map((e) => e.fault)).toEqual(['lose-answer', 'delay']);
    } finally {
      env.proxied.proxy.clearFaults();
      await Promise.all([kv.close(), other.close()]);
    }
  });
});
