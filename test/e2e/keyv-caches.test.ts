// cache-manager 7 and cacheable 2 (both on Keyv 5) over the Keyv adapter,
// end to end against the real API server. Two caches on one bucket stand for
// two pods sharing a cache.
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createCache } from 'cache-manager';
import { Cacheable } from 'cacheable';
import Keyv from 'keyv';
import { createClientNodeApi, createKV, type KubeApi, type KV } from '@k8s-kv/core';
import { KeyvK8sKv, type KeyvK8sKvOptions } from '@k8s-kv/keyv-adapter';
import { adminKubeConfig, createTestNamespace, type TestNamespace } from '../setup/cluster.ts';
import { recordObject } from '../support/object-recorder.ts';

let namespace: TestNamespace;
let api: KubeApi;

beforeAll(async () => {
  namespace = await createTestNamespace('keyv-caches');
  api = createClientNodeApi(adminKubeConfig());
});
afterAll(async () => {
  await namespace?.cleanup();
});

const toClose: Array<{ disconnect(): Promise<void> } | KV> = [];
afterEach(async () => {
  await Promise.all(toClose.splice(0).map((item) => ('disconnect' in item ? item.disconnect() : item.close())));
});

const bucketName = (label: string) => `keyv-e2e-${label}-${randomBytes(4).toString('hex')}`;
/** A Keyv adapter on the bucket, as one pod would create it: a cache, so it evicts when full. */
const store = (bucket: string, options: Partial<KeyvK8sKvOptions> = {}) => {
  const adapter = new KeyvK8sKv({ bucket, api, kubeNamespace: namespace.name, evict: 'oldest', ...options });
  toClose.push(adapter);
  return adapter;
};
/** A core store on the bucket, to look at what the caches stored. */
const inspect = (bucket: string) => {
  const kv = createKV({ bucket, api, namespace: namespace.name, cache: false });
  toClose.push(kv);
  return kv;
};

describe('cache-manager 7: createCache({ stores: [new Keyv({ store })] })', () => {
  it('wrap() computes once, stores in the bucket with its ttl, and a second pod reads it', async () => {
    const bucket = bucketName('cm-wrap');
    const cache = createCache({ stores: [new Keyv({ store: store(bucket) })] });
    const compute = vi.fn(async () => ({ answer: 42 }));

    const before = Date.now();
    expect(await cache.wrap('question', compute, 60_000)).toEqual({ answer: 42 });
    expect(await cache.wrap('question', compute, 60_000)).toEqual({ answer: 42 });
    expect(compute).toHaveBeenCalledTimes(1);

    // cache-manager's ttl() reads `expires` from the value Keyv stored.
    const expires = await cache.ttl('question');
    expect(expires).toBeGreaterThanOrEqual(before + 60_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 60_000);
    const raw = JSON.parse((await inspect(bucket).getText('keyv:question'))!) as { value: unknown; expires: number };
    expect(raw).toEqual({ value: { answer: 42 }, expires });
    expect((await inspect(bucket).getEntry('keyv:question'))?.expiresAt).toBeInstanceOf(Date);

    const otherPod = createCache({ stores: [new Keyv({ store: store(bucket) })] });
    const recompute = vi.fn(async () => ({ answer: 0 }));
    expect(await otherPod.wrap('question', recompute, 60_000)).toEqual({ answer: 42 });
    expect(recompute).not.toHaveBeenCalled();
  });

  it('set/get/mget/mset/del/clear, with ttl on set', async () => {
    const bucket = bucketName('cm-ops');
    const cache = createCache({ stores: [new Keyv({ store: store(bucket), namespace: 'svc' })], ttl: 60_000 });
    await cache.set('a', 'A');
    await cache.set('b', { n: 2 }, 120_000);
    expect(await cache.get('a')).toBe('A');
    expect(await cache.mget(['a', 'b', 'c'])).toEqual(['A', { n: 2 }, undefined]);
    await cache.mset([
      { key: 'c', value: 3 },
      { key: 'd', value: 4, ttl: 5_000 },
    ]);
    expect(await cache.mget(['c', 'd'])).toEqual([3, 4]);
    expect(await cache.del('a')).toBe(true);
    expect(await cache.get('a')).toBeUndefined();
    expect(await inspect(bucket).keys()).toEqual(['svc:b', 'svc:c', 'svc:d']);

    // Another cache in the same bucket under another namespace is untouched by clear().
    const neighbour = createCache({ stores: [new Keyv({ store: store(bucket), namespace: 'other' })] });
    await neighbour.set('x', 'X');
    await cache.clear();
    expect(await cache.mget(['b', 'c', 'd'])).toEqual([undefined, undefined, undefined]);
    expect(await neighbour.get('x')).toBe('X');
    expect(await inspect(bucket).keys()).toEqual(['other:x']);
  });

  it('entries expire: a short ttl is gone later, and wrap() computes again', async () => {
    const bucket = bucketName('cm-expiry');
    const cache = createCache({ stores: [new Keyv({ store: store(bucket) })] });
    let calls = 0;
    const compute = async () => `v${++calls}`;
    expect(await cache.wrap('k', compute, 300)).toBe('v1');
    await vi.waitFor(async () => expect(await cache.get('k')).toBeUndefined(), { timeout: 15_000, interval: 100 });
    expect(await cache.wrap('k', compute, 60_000)).toBe('v2');
  });

  it('disconnect() closes the stores', async () => {
    const adapter = new KeyvK8sKv({ bucket: bucketName('cm-close'), api, kubeNamespace: namespace.name, evict: 'oldest' });
    const cache = createCache({ stores: [new Keyv({ store: adapter })] });
    await cache.set('k', 'v');
    await cache.disconnect();
    await expect(adapter.get('keyv:k')).rejects.toMatchObject({ code: 'KV_CLOSED' });
  });
});

describe('cache-manager 7 over an evicting bucket (evict: "oldest", maxBytes)', () => {
  it('keeps working while writing 10x its budget, never passes it, and evicts the least recently written', async () => {
    const bucket = bucketName('cm-budget');
    const maxBytes = 4096;
    // Every state the ConfigMap goes through, from the server's own watch.
    const recording = await recordObject(api, namespace.name, bucket);
    const cache = createCache({ stores: [new Keyv({ store: store(bucket, { maxBytes }) })] });
    const keys: string[] = [];
    let last: unknown;
    for (let i = 0; i < 320; i++) {
      const key = `item:${String(i).padStart(4, '0')}`;
      last = { i, token: randomBytes(48).toString('hex') };
      await cache.set(key, last, 3_600_000);
      keys.push(key);
    }
    const final = await api.get({ kind: 'ConfigMap', namespace: namespace.name, name: bucket });
    await vi.waitFor(() => expect(recording.states.at(-1)?.resourceVersion).toBe(final.metadata.resourceVersion), { timeout: 15_000, interval: 50 });
    recording.stop();
    expect(recording.failure).toBeUndefined();
    // 10x the budget written, as the API server counts the entries' bytes...
    const written = new Set<string>();
    let writtenBytes = 0;
    for (const state of recording.states) {
      for (const entry of state.entries.values()) {
        if (!written.has(entry.b64)) writtenBytes += entry.bytes;
        written.add(entry.b64);
      }
      // ...and not one state of the ConfigMap over it.
      expect(state.totalBytes).toBeLessThanOrEqual(maxBytes);
    }
    expect(writtenBytes).toBeGreaterThan(10 * maxBytes);
    // What is left is the most recently written, and the cache reads it; the rest was evicted.
    const kept = await inspect(bucket).keys();
    expect(kept.length).toBeGreaterThan(20);
    expect(kept).toEqual(keys.slice(keys.length - kept.length).map((key) => `keyv:${key}`));
    expect(await cache.get(keys.at(-1)!)).toEqual(last);
    expect(await cache.get(keys[0]!)).toBeUndefined();
  });
});

describe('cacheable 2: new Cacheable({ secondary })', () => {
  it('keeps values in the bucket; a second pod with an empty primary reads them from the secondary', async () => {
    const bucket = bucketName('cacheable');
    const cache = new Cacheable({ secondary: new Keyv({ store: store(bucket) }), ttl: '1m' });
    await cache.set('user:1', { name: 'Ada' });
    expect(await cache.get('user:1')).toEqual({ name: 'Ada' });
    const raw = JSON.parse((await inspect(bucket).getText('keyv:user:1'))!) as { value: unknown; expires: number };
    expect(raw.value).toEqual({ name: 'Ada' });
    expect(raw.expires).toBeTypeOf('number');

    const otherPod = new Cacheable({ secondary: new Keyv({ store: store(bucket) }) });
    expect(await otherPod.get('user:1')).toEqual({ name: 'Ada' });
    const computed = vi.fn(async () => 'fresh');
    expect(await otherPod.getOrSet('user:2', computed)).toBe('fresh');
    // The first pod sees the other pod's write once its watch delivers it.
    await vi.waitFor(async () => expect(await cache.get('user:2')).toBe('fresh'), { timeout: 15_000, interval: 50 });
    expect(await cache.getOrSet('user:2', computed)).toBe('fresh');
    expect(computed).toHaveBeenCalledTimes(1);

    expect(await otherPod.delete('user:1')).toBe(true);
    expect(await otherPod.get('user:1')).toBeUndefined();
  });

  it('takes the adapter itself as secondary, respects its namespace, and clear()s only that namespace', async () => {
    const bucket = bucketName('cacheable-ns');
    const a = new Cacheable({ secondary: store(bucket), namespace: 'a' });
    const b = new Cacheable({ secondary: store(bucket), namespace: 'b' });
    await a.set('k', 'from a');
    await b.set('k', 'from b');
    expect(await inspect(bucket).keys()).toEqual(['a:k', 'b:k']);
    await a.clear();
    expect(await a.get('k')).toBeUndefined();
    expect(await b.get('k')).toBe('from b');
    expect(await inspect(bucket).keys()).toEqual(['b:k']);
    await a.disconnect();
    await b.disconnect();
  });

  it('a short ttl expires in the secondary too', async () => {
    const bucket = bucketName('cacheable-ttl');
    const cache = new Cacheable({ secondary: new Keyv({ store: store(bucket) }) });
    await cache.set('k', 'v', 300);
    // Keyv's default namespace is "keyv" (Cacheable sets it only when it has a namespace of its own).
    expect((await inspect(bucket).getEntry('keyv:k'))?.expiresAt).toBeInstanceOf(Date);
    const otherPod = new Cacheable({ secondary: new Keyv({ store: store(bucket) }) });
    await vi.waitFor(async () => expect(await otherPod.get('k')).toBeUndefined(), { timeout: 15_000, interval: 100 });
  });
});
