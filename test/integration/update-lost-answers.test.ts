// update() when the answer to its write is lost, through the fault proxy in
// front of the real API server (issue 12, D1): the write landed, but the store
// cannot see it. Whatever another writer did in between, update never runs its
// function twice and never applies its change twice; when the store cannot tell
// whether its write landed, it says so (KV_UNAVAILABLE, "may or may not have
// been applied").
import { describe, expect, it } from 'vitest';
import { createKV, UnavailableError, type KV } from '@k8s-kv/core';
import { adminKubeConfig } from '../setup/cluster.ts';
import { useProxiedNamespace } from '../support/cluster-proxy.ts';

const env = useProxiedNamespace('update-lost');

const text = (v: Uint8Array | undefined): string | undefined => (v === undefined ? undefined : Buffer.from(v).toString());
const increment = (v: Uint8Array | undefined): string => String(Number(text(v) ?? '0') + 1);

/** A store through the proxy (cache off, so every plan is a fresh read) and another writer past it. */
function stores(bucket: string): { kv: KV; other: KV; close: () => Promise<void> } {
  const kv = createKV({ bucket, namespace: env.ns.name, kubeConfig: env.proxied.kubeConfig(), cache: false, retry: { maxElapsedMs: 10_000 } });
  const other = createKV({ bucket, namespace: env.ns.name, kubeConfig: adminKubeConfig(), cache: false });
  return {
    kv,
    other,
    close: async () => {
      env.proxied.proxy.clearFaults();
      await Promise.all([kv.close(), other.close()]);
    },
  };
}

/**
 * Loses the answer to the store's next write of `bucket` (a JSON patch of the
 * object, or the POST that creates it), and holds back the store's first read
 * after that for a second, so that another writer acts between the landing and
 * the store's look. Returns the faults the proxy injected on this bucket.
 */
function loseAnswerThenHoldRead(bucket: string, write: 'patch' | 'create'): () => string[] {
  const ofBucket = (path: string): boolean => path.includes(bucket);
  const isWrite = (method: string, path: string): boolean =>
    write === 'patch' ? method === 'PATCH' && ofBucket(path) : method === 'POST' && path.endsWith(`/namespaces/${env.ns.name}/configmaps`);
  let lost = false;
  env.proxied.proxy.inject({
    match: (request) => {
      const hit = !lost && isWrite(request.method, request.path);
      lost ||= hit;
      return hit;
    },
    fault: { kind: 'lose-answer' },
  });
  env.proxied.proxy.inject({
    match: (request) => lost && request.method === 'GET' && !request.watch && ofBucket(request.path),
    fault: { kind: 'delay', ms: 1_000 },
  });
  const start = env.proxied.proxy.log.length;
  return () => env.proxied.proxy.log.slice(start).map((e) => e.fault);
}

describe('update whose write lands and whose answer is lost', () => {
  it('with nobody else writing: the store recognises its own write; done, fn ran once', async () => {
    const { kv, other, close } = stores('lost-alone');
    try {
      await kv.put('n', '0');
      env.proxied.proxy.inject({ match: { method: 'PATCH', path: 'lost-alone' }, fault: { kind: 'lose-answer' } });
      let calls = 0;
      const after = await kv.update('n', (v) => {
        calls += 1;
        return increment(v);
      });
      expect(text(after)).toBe('1');
      expect(calls).toBe(1);
      expect(await other.getText('n')).toBe('1');
      expect(env.proxied.proxy.log.filter((e) => e.request?.includes('lost-alone')).map((e) => e.fault)).toEqual(['lose-answer']);
    } finally {
      await close();
    }
  });

  it('of a new key, then the key deleted by another writer: reported as unknown, never applied twice', async () => {
    const { kv, other, close } = stores('lost-then-deleted');
    try {
      await kv.put('other-key', 'x'); // the bucket exists: the update's write is a JSON patch
      const faults = loseAnswerThenHoldRead('lost-then-deleted', 'patch');
      let calls = 0;
      const update = kv
        .update('token', () => {
          calls += 1;
          return 'issued';
        })
        .catch((e: unknown) => e);
      // The write lands; another writer consumes the token before the store looks.
      await expect.poll(() => other.getText('token'), { timeout: 5_000, interval: 20 }).toBe('issued');
      expect(await other.delete('token')).toBe(true);
      const error = await update;
      expect(error).toBeInstanceOf(UnavailableError);
      expect(error).toMatchObject({ code: 'KV_UNAVAILABLE', retryable: true });
      expect((error as Error).message).toMatch(/may or may not have been applied/);
      expect(calls).toBe(1);
      // Before the fix the store took the absent key for a write that never landed, and issued the token again.
      expect(await other.has('token')).toBe(false);
      expect(faults()).toEqual(['lose-answer', 'delay']);
    } finally {
      await close();
    }
  });

  it("that created the bucket, then another writer's increment: reported as unknown, never applied twice", async () => {
    const { kv, other, close } = stores('lost-create');
    try {
      const faults = loseAnswerThenHoldRead('lost-create', 'create');
      let calls = 0;
      const update = kv
        .update('n', (v) => {
          calls += 1;
          return increment(v);
        })
        .catch((e: unknown) => e);
      await expect.poll(() => other.getText('n'), { timeout: 5_000, interval: 20 }).toBe('1');
      expect(text(await other.update('n', increment))).toBe('2');
      const error = await update;
      expect(error).toBeInstanceOf(UnavailableError);
      expect((error as Error).message).toMatch(/may or may not have been applied/);
      expect(calls).toBe(1);
      expect(await other.getText('n')).toBe('2');
      expect(faults()).toEqual(['lose-answer', 'delay']);
    } finally {
      await close();
    }
  });
});
