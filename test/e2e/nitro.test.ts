// A real Nitro app (test/e2e/nitro-app) built with nitropack, preset
// node-server, that mounts @k8s-kv/unstorage-driver by package name for its
// data and its route cache. Two server processes of the same build play two
// pods: what one writes, the other reads, and the ConfigMaps hold it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api } from '@kubernetes/client-node';
import { build, copyPublicAssets, createNitro, prepare } from 'nitropack';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { decodeEnvelope, decodeKey, decodeKeyFull } from '@k8s-kv/core';
import { adminKubeConfig, createTestNamespace, kubeconfigPath, type TestNamespace } from './../setup/cluster.ts';

const appDir = fileURLToPath(new URL('./nitro-app/', import.meta.url));
const driverDist = fileURLToPath(new URL('../../packages/unstorage-driver/dist/index.js', import.meta.url));
const DATA_BUCKET = 'nitro-data';
const CACHE_BUCKET = 'nitro-cache';

let ns: TestNamespace;
let workDir: string;
const servers: Array<{ child: ChildProcess; url: string; output: string[] }> = [];

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts the built server as its own process and waits until it answers. */
async function startServer(serverEntry: string) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const output: string[] = [];
  const child = spawn(process.execPath, [serverEntry], {
    env: { ...process.env, KUBECONFIG: kubeconfigPath('admin'), NITRO_HOST: '127.0.0.1', NITRO_PORT: String(port), HOST: '127.0.0.1', PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const server = { child, url, output };
  servers.push(server);
  await vi.waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`the Nitro server exited (${child.exitCode}):\n${output.join('')}`);
      const response = await fetch(`${url}/whoami`);
      if (!response.ok) throw new Error(`GET /whoami answered ${response.status}`);
    },
    { timeout: 30_000, interval: 100 },
  );
  return server;
}

async function http(method: string, url: string, body?: unknown) {
  const response = await fetch(url, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : undefined };
}

/** The entries of a bucket's ConfigMap, decoded with core's codecs, read straight from the API server. */
async function configMapEntries(bucket: string) {
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const cm = await core.readNamespacedConfigMap({ name: bucket, namespace: ns.name });
  const entries = new Map<string, { text: string; modifiedAt: number; expiresAt: number | undefined }>();
  for (const [dataKey, b64] of Object.entries({ ...cm.data, ...cm.binaryData })) {
    const fields = decodeEnvelope(Buffer.from(b64, 'base64'));
    const key = fields.fullKey ? decodeKeyFull(fields.fullKey) : decodeKey(dataKey);
    if (key.kind !== 'plain') throw new Error(`cannot decode data key ${dataKey}`);
    entries.set(key.key, { text: Buffer.from(fields.value).toString('utf8'), modifiedAt: fields.modifiedAt, expiresAt: fields.expiresAt });
  }
  return { labels: cm.metadata?.labels ?? {}, entries };
}

describe('Nitro app with the k8s-kv driver mounted by package name', () => {
  let a: Awaited<ReturnType<typeof startServer>>;
  let b: Awaited<ReturnType<typeof startServer>>;

  beforeAll(async () => {
    if (!existsSync(driverDist)) {
      throw new Error('packages/unstorage-driver/dist is missing: Nitro bundles the built package, run `pnpm build` first (`pnpm test` does).');
    }
    ns = await createTestNamespace('nitro');
    workDir = mkdtempSync(join(tmpdir(), 'k8s-kv-nitro-'));
    const nitro = await createNitro({
      rootDir: appDir,
      dev: false,
      preset: 'node-server',
      logLevel: 1,
      buildDir: join(workDir, '.nitro'),
      output: { dir: join(workDir, '.output') },
      // Same mounts as nitro.config.ts, in this test's namespace.
      storage: {
        data: { driver: '@k8s-kv/unstorage-driver', bucket: DATA_BUCKET, namespace: ns.name },
        cache: { driver: '@k8s-kv/unstorage-driver', bucket: CACHE_BUCKET, namespace: ns.name, evict: 'oldest' },
      },
    });
    await prepare(nitro);
    await copyPublicAssets(nitro);
    await build(nitro);
    await nitro.close();

    const entry = join(workDir, '.output', 'server', 'index.mjs');
    [a, b] = await Promise.all([startServer(entry), startServer(entry)]);
  });

  afterAll(async () => {
    await Promise.all(
      servers.map(
        ({ child }) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      ),
    );
    if (workDir) rmSync(workDir, { recursive: true, force: true });
    await ns?.cleanup();
  });

  it('two server processes run', async () => {
    const [pidA, pidB] = await Promise.all([http('GET', `${a.url}/whoami`), http('GET', `${b.url}/whoami`)]);
    expect(pidA.json.pid).not.toBe(pidB.json.pid);
  });

  it('writes and reads through useStorage, into the ConfigMap', async () => {
    expect((await http('PUT', `${a.url}/kv/greeting`, { hello: 'world' })).status).toBe(200);
    const read = await http('GET', `${a.url}/kv/greeting`);
    expect(read.status).toBe(200);
    expect(read.json.value).toEqual({ hello: 'world' });
    expect(typeof read.json.meta.mtime).toBe('string');

    const cm = await configMapEntries(DATA_BUCKET);
    expect(cm.labels['app.kubernetes.io/managed-by']).toBe('k8s-kv');
    expect(cm.entries.get('greeting')?.text).toBe('{"hello":"world"}');
    expect(cm.entries.get('greeting')?.expiresAt).toBeUndefined();

    // A TTL given by the app (seconds) is kept with the entry.
    expect((await http('PUT', `${a.url}/kv/session?ttl=120`, { user: 7 })).status).toBe(200);
    const session = (await configMapEntries(DATA_BUCKET)).entries.get('session')!;
    expect(session.expiresAt! - session.modifiedAt).toBe(120_000);
    expect((await http('GET', `${a.url}/kv/session`)).json.meta.ttl).toBeGreaterThan(100);
  });

  it("a second instance sees the first one's writes, and the other way round", async () => {
    await http('PUT', `${a.url}/kv/from-a`, { by: 'a' });
    await expect.poll(async () => (await http('GET', `${b.url}/kv/from-a`)).json?.value, { timeout: 15_000 }).toEqual({ by: 'a' });

    await http('PUT', `${b.url}/kv/from-b`, [1, 2, 3]);
    await expect.poll(async () => (await http('GET', `${a.url}/kv/from-b`)).json?.value, { timeout: 15_000 }).toEqual([1, 2, 3]);
    await expect
      .poll(async () => (await http('GET', `${a.url}/kv`)).json.keys.sort(), { timeout: 15_000 })
      .toEqual(expect.arrayContaining(['from-a', 'from-b', 'greeting']));

    await http('DELETE', `${b.url}/kv/from-a`);
    await expect.poll(async () => (await http('GET', `${a.url}/kv/from-a`)).status, { timeout: 15_000 }).toBe(404);
    expect((await configMapEntries(DATA_BUCKET)).entries.has('from-a')).toBe(false);
  });

  it("the README's route examples work as written", async () => {
    // api/visits.get.ts (Nuxt's server/api/visits.get.ts)
    expect((await http('GET', `${a.url}/api/visits`)).json).toEqual({ visits: 1 });
    expect((await http('GET', `${a.url}/api/visits`)).json).toEqual({ visits: 2 });
    expect((await configMapEntries(DATA_BUCKET)).entries.get('visits')?.text).toBe('2');
    // 50 concurrent requests over the two instances: every one counts, each answer is distinct.
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => http('GET', `${(i % 2 ? a : b).url}/api/visits`)));
    expect(answers.every((answer) => answer.status === 200)).toBe(true);
    expect(answers.map((answer) => answer.json.visits as number).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 3));
    expect((await configMapEntries(DATA_BUCKET)).entries.get('visits')?.text).toBe('52');
    await expect.poll(async () => (await http('GET', `${b.url}/kv/visits`)).json?.value, { timeout: 15_000 }).toBe(52);

    // routes/items/[key].put.ts: stored with a TTL of 3600 s
    expect((await http('PUT', `${a.url}/items/cart-7`, { items: ['tea'] })).json).toEqual({ stored: 'cart-7' });
    const cart = (await configMapEntries(DATA_BUCKET)).entries.get('cart-7')!;
    expect(JSON.parse(cart.text)).toEqual({ items: ['tea'] });
    expect(cart.expiresAt! - cart.modifiedAt).toBe(3_600_000);
    await expect.poll(async () => (await http('GET', `${b.url}/kv/cart-7`)).json?.value, { timeout: 15_000 }).toEqual({ items: ['tea'] });

    // routes/report.get.ts: cached 60 s in the cache bucket, for both instances
    const report = await http('GET', `${a.url}/report`);
    expect(report.status).toBe(200);
    const reportKeys = async () => [...(await configMapEntries(CACHE_BUCKET)).entries.keys()].filter((key) => key.startsWith('nitro:handlers:_:'));
    await expect.poll(reportKeys, { timeout: 15_000 }).toHaveLength(1);
    await expect.poll(async () => (await http('GET', `${b.url}/report`)).json, { timeout: 15_000 }).toEqual(report.json);
  });

  it('keeps the cached route in the cache bucket with its maxAge as TTL, shared by both instances', async () => {
    const first = await http('GET', `${a.url}/cached`);
    expect(first.status).toBe(200);
    expect(first.json.computedBy).toBe((await http('GET', `${a.url}/whoami`)).json.pid);

    // Nitro writes the cache entry after answering (event.waitUntil): wait for it.
    const cacheKeysOf = (entries: Map<string, unknown>) => [...entries.keys()].filter((key) => key.startsWith('nitro:handlers:cached:'));
    await expect.poll(async () => cacheKeysOf((await configMapEntries(CACHE_BUCKET)).entries), { timeout: 15_000 }).toHaveLength(1);
    const cm = await configMapEntries(CACHE_BUCKET);
    const entry = cm.entries.get(cacheKeysOf(cm.entries)[0]!)!;
    expect(entry.expiresAt! - entry.modifiedAt).toBe(60_000);
    const cached = JSON.parse(entry.text) as { value: { code: number; body: unknown } };
    expect(cached.value.code).toBe(200);
    expect(cached.value.body).toEqual(first.json);

    // Both instances now answer from that entry (computed once, by A's process).
    expect((await http('GET', `${a.url}/cached`)).json).toEqual(first.json);
    await expect.poll(async () => (await http('GET', `${b.url}/cached`)).json, { timeout: 15_000 }).toEqual(first.json);
  });
});
