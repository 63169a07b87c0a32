import { describe, expect, it, vi } from 'vitest';
import { createKV, listBuckets } from '@k8s-kv/core';
import { countingApi, createMemoryApi } from '@k8s-kv/core/testing';
import { describeKvBehaviour } from './behaviour/kv-behaviour.ts';
import { describeElasticBucket } from './behaviour/elastic-behaviour.ts';
import { describeShardedBucket } from './behaviour/sharded-behaviour.ts';

const api = createMemoryApi({ namespaces: ['default', 'team-a'] });
const forbiddenApi = createMemoryApi({ namespaces: ['default', 'team-a'] });
for (const verb of ['get', 'list', 'watch', 'create', 'patch', 'delete'] as const) forbiddenApi.forbid(verb);

describeKvBehaviour('in-memory port', () => ({ api, namespace: 'team-a', missingNamespace: 'no-such-namespace', forbiddenApi }));
describeKvBehaviour('in-memory port, 4 shards', () => ({ api, namespace: 'team-a', missingNamespace: 'no-such-namespace', forbiddenApi }), { shards: 4 });
describeShardedBucket('in-memory port', () => ({ api, namespace: 'team-a', missingNamespace: 'no-such-namespace', forbiddenApi }));
describeElasticBucket('in-memory port', () => ({ api, namespace: 'team-a', missingNamespace: 'no-such-namespace', forbiddenApi }));

describe('listBuckets (in-memory port)', () => {
  it('lists one namespace, or every namespace sorted by namespace and name', async () => {
    const multi = createMemoryApi({ namespaces: ['ns-a', 'ns-b'] });
    const stores = [
      createKV({ api: multi, namespace: 'ns-b', bucket: 'beta', cache: false }),
      createKV({ api: multi, namespace: 'ns-a', bucket: 'zeta', cache: false }),
      createKV({ api: multi, namespace: 'ns-b', bucket: 'alpha', cache: false, app: 'other' }),
    ];
    await Promise.all(stores.map((kv) => kv.put('k', 'v')));
    await Promise.all(stores.map((kv) => kv.close()));
    expect((await listBuckets({ api: multi, namespace: 'ns-b' })).map((b) => b.name)).toEqual(['alpha', 'beta']);
    const all = await listBuckets({ api: multi, allNamespaces: true });
    expect(all.map((b) => [b.namespace, b.name, b.app, b.keys])).toEqual([
      ['ns-a', 'zeta', 'default', 1],
      ['ns-b', 'alpha', 'other', 1],
      ['ns-b', 'beta', 'default', 1],
    ]);
    expect((await listBuckets({ api: multi, allNamespaces: true, app: 'other' })).map((b) => b.name)).toEqual(['alpha']);
  });
});

describe('createMemoryApi strategic merge patches', () => {
  it('refuses what it does not model (lists other than managedFields, $ directives) instead of guessing', async () => {
    const fake = createMemoryApi();
    await fake.create('ConfigMap', 'default', { metadata: { name: 'x' } });
    const ref = { kind: 'ConfigMap' as const, namespace: 'default', name: 'x' };
    await expect(fake.strategicMergePatch(ref, { metadata: { finalizers: ['a'] } })).rejects.toThrow(/lists \(\/metadata\/finalizers\) are not modelled/);
    await expect(fake.strategicMergePatch(ref, { data: { $patch: 'replace' } })).rejects.toThrow(/directive \$patch is not modelled/);
    expect((await fake.strategicMergePatch(ref, { metadata: { managedFields: [{}] }, data: { a: '1' } })).data).toEqual({ a: '1' });
  });
});

describe('a bucket without list/watch rights (in-memory port)', () => {
  it('says why once, not once per object (head and every shard)', async () => {
    const limited = createMemoryApi();
    limited.forbid('list');
    limited.forbid('watch');
    for (const shards of [1, 4]) {
      const errors: unknown[] = [];
      const kv = createKV({ api: limited, bucket: `refused-${shards}`, shards, onError: (e) => errors.push(e) });
      const entries = Array.from({ length: 12 }, (_, i): [string, string] => [`key-${i}`, `value ${i}`]);
      await kv.putMany(entries);
      for (const [key, value] of entries) expect(await kv.getText(key)).toBe(value);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ code: 'KV_FORBIDDEN', verb: 'watch' });
      await kv.close();
    }
  });
});

describe('contention backoff (in-memory port)', () => {
  it('after a write far slower than usual, waits before the next patch, and writes made meanwhile join it', async () => {
    const memory = createMemoryApi();
    let slow = false;
    const counted = countingApi({
      ...memory,
      async jsonPatch(...args: Parameters<typeof memory.jsonPatch>) {
        if (slow) await new Promise((resolve) => setTimeout(resolve, 300)); // as if other writers held the object
        return memory.jsonPatch(...args);
      },
    });
    const kv = createKV({ api: counted.api, bucket: 'paced', cache: false });
    const random = vi.spyOn(Math, 'random').mockReturnValue(1); // the longest pause: MAX_PACING_MS (100 ms)
    try {
      for (let i = 0; i < 3; i++) await kv.put(`usual-${i}`, 'v'); // this object's usual time
      slow = true;
      await kv.put('slow', 'v');
      slow = false;
      counted.reset();
      const first = kv.put('first', 'v');
      for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve));
      expect(counted.counts.jsonPatch ?? 0).toBe(0); // pausing (for MAX_PACING_MS), nothing sent
      const second = kv.put('second', 'v');
      await Promise.all([first, second]);
      expect(counted.counts.jsonPatch).toBe(1); // one patch for both
      expect((await kv.keys()).sort()).toEqual(['first', 'second', 'slow', 'usual-0', 'usual-1', 'usual-2']);
    } finally {
      random.mockRestore();
      await kv.close();
    }
  });

  it('runs on real timers: a test that fakes the global timers still sees its puts settle, pause included', async () => {
    const memory = createMemoryApi();
    let slow = false;
    const kv = createKV({
      api: {
        ...memory,
        async jsonPatch(...args: Parameters<typeof memory.jsonPatch>) {
          if (slow) await new Promise((resolve) => setTimeout(resolve, 300));
          return memory.jsonPatch(...args);
        },
      },
      bucket: 'paced-fake-timers',
      cache: false,
    });
    try {
      for (let i = 0; i < 3; i++) await kv.put(`usual-${i}`, 'v');
      slow = true;
      await kv.put('slow', 'v');
      slow = false;
      vi.useFakeTimers();
      await kv.put('after', 'v'); // pauses up to MAX_PACING_MS of real time, then writes
      vi.useRealTimers();
      expect(await kv.keys()).toContain('after');
    } finally {
      vi.useRealTimers();
      await kv.close();
    }
  });
});

describe('elastic bucket with a watch that lags (in-memory port)', () => {
  it('reads its own writes, and every key, after a split its watch has not shown yet', async () => {
    const memory = createMemoryApi();
    const held: Array<() => void> = [];
    let holding = false;
    const lagging = {
      ...memory,
      watch: (kind: Parameters<typeof memory.watch>[0], namespace: string, options: Parameters<typeof memory.watch>[2]) =>
        memory.watch(kind, namespace, {
          ...options,
          onEvent: (event) => (holding ? held.push(() => options.onEvent(event)) : options.onEvent(event)),
        }),
    };
    const reader = createKV({ bucket: 'lag', api: lagging, namespace: 'default' });
    const writer = createKV({ bucket: 'lag', api: memory, namespace: 'default', cache: false });
    await writer.put('before', 'b');
    expect(await reader.getText('before')).toBe('b'); // the reader's cache is running
    holding = true;
    const values = new Map<string, string>();
    for (let i = 0; i < 400; i += 20) {
      const batch = Array.from(
        { length: 20 },
        (_, j) => [`w${i + j}`, `${'v'.repeat(300)}${i + j}`.replace(/v/g, () => String.fromCharCode(97 + Math.floor(Math.random() * 26)))] as [string, string],
      );
      await writer.putMany(batch);
      for (const [k, v] of batch) values.set(k, v);
    }
    await new Promise((r) => setTimeout(r, 50));
    expect((await writer.stats()).layout).toBe('elastic');
    await reader.put('mine', 'written after the split');
    expect(await reader.getText('mine')).toBe('written after the split');
    for (const [k, v] of [...values].slice(0, 50)) expect(await reader.getText(k)).toBe(v);
    holding = false;
    for (const release of held.splice(0)) release();
    expect(await reader.getText('mine')).toBe('written after the split');
    expect((await reader.keys()).length).toBe(values.size + 2);
    await Promise.all([reader.close(), writer.close()]);
  });
});
