// Values and credentials never appear in error messages (nor in their causes,
// as util.inspect would print them) or in anything the library logs.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createClientNodeApi, createKV, KubeConfig, type KV } from '@k8s-kv/core';
import { adminKubeConfig, createTestNamespace, kubeconfigPath, userKubeConfig, type TestNamespace } from '../setup/cluster.ts';

const SECRET = `SECRET-${randomBytes(8).toString('hex')}`;
const tokens = readFileSync(new URL('../../.cluster/tokens.csv', import.meta.url), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => line.split(',')[0]!);

let ns: TestNamespace;
const open: KV[] = [];
const make = (options: Partial<Parameters<typeof createKV>[0]> = {}): KV => {
  const kv = createKV({ bucket: 'secrets', namespace: ns.name, kubeConfig: adminKubeConfig(), retry: { maxElapsedMs: 500 }, ...options });
  open.push(kv);
  return kv;
};
const output: string[] = [];

beforeAll(async () => {
  ns = await createTestNamespace('secrets');
  for (const stream of [process.stdout, process.stderr] as const) {
    const write = stream.write.bind(stream);
    vi.spyOn(stream, 'write').mockImplementation(((chunk: unknown, ...rest: unknown[]) => {
      output.push(String(chunk));
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof stream.write);
  }
  for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      output.push(args.map(String).join(' '));
    });
  }
});
afterAll(async () => {
  vi.restoreAllMocks();
  await Promise.all(open.map((kv) => kv.close()));
  await ns?.cleanup();
});

function expectClean(error: unknown): void {
  expect(error).toBeInstanceOf(Error);
  const printed = inspect(error, { depth: 10 }) + String(error) + JSON.stringify(error);
  expect(printed).not.toContain(SECRET);
  expect(printed).not.toContain(Buffer.from(SECRET).toString('base64').slice(0, 16));
  for (const token of tokens) expect(printed).not.toContain(token);
}

describe('no values or tokens in errors or logs', () => {
  it('in every error a write or read can raise', async () => {
    const kv = make({ maxBytes: 1_048_576 }); // one object that does not split: its 1 MiB limit
    await kv.put('k', SECRET);
    const failures: unknown[] = [];
    const big = Buffer.concat([Buffer.from(SECRET), randomBytes(1_100_000)]);
    failures.push(await kv.put('too-big', big).catch((e: unknown) => e)); // ValueTooLargeError
    await kv.putMany([0, 1, 2, 3].map((i) => [`fill${i}`, Buffer.concat([Buffer.from(SECRET), randomBytes(240_000)])] as [string, Uint8Array]));
    failures.push(await kv.put('full', Buffer.concat([Buffer.from(SECRET), randomBytes(200_000)])).catch((e: unknown) => e)); // BucketFullError
    failures.push(await kv.put('k', { secret: SECRET } as unknown as string).catch((e: unknown) => e)); // InvalidValueError
    failures.push(
      await make({ kubeConfig: userKubeConfig('alice') })
        .put('k', SECRET)
        .catch((e: unknown) => e),
    ); // ForbiddenError
    const badToken = new KubeConfig();
    badToken.loadFromFile(kubeconfigPath());
    const user = badToken.getCurrentUser()!;
    (user as { token?: string }).token = `${SECRET}-not-a-token`;
    failures.push(
      await make({ kubeConfig: badToken })
        .get('k')
        .catch((e: unknown) => e),
    ); // UnauthorizedError
    const api = createClientNodeApi(adminKubeConfig());
    await api.mergePatch(
      { kind: 'ConfigMap', namespace: ns.name, name: 'secrets' },
      { binaryData: { k: Buffer.from(`${SECRET} edited by hand`).toString('base64') } },
    );
    failures.push(
      await make({ cache: false })
        .get('k')
        .catch((e: unknown) => e),
    ); // CorruptEntryError
    const foreign = make({ bucket: 'secrets', app: 'another-app' });
    failures.push(await foreign.put('k', SECRET).catch((e: unknown) => e)); // ForeignObjectError
    const down = new KubeConfig();
    down.loadFromFile(kubeconfigPath());
    down.clusters[0] = { ...down.clusters[0]!, server: 'https://127.0.0.1:1' };
    failures.push(
      await make({ kubeConfig: down })
        .put('k', SECRET)
        .catch((e: unknown) => e),
    ); // UnavailableError
    expect(failures.map((e) => (e as { code?: string }).code)).toEqual([
      'KV_VALUE_TOO_LARGE',
      'KV_BUCKET_FULL',
      'KV_INVALID_VALUE',
      'KV_FORBIDDEN',
      'KV_UNAUTHORIZED',
      'KV_CORRUPT_ENTRY',
      'KV_FOREIGN_OBJECT',
      'KV_UNAVAILABLE',
    ]);
    for (const failure of failures) expectClean(failure);
  });

  it('the library itself writes nothing to the console or the standard streams', () => {
    expect(output.filter((line) => !line.includes('vitest'))).toEqual([]);
  });
});
