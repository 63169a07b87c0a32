/**
 * What is particular to sharded buckets (format 2, `createKV({ shards })`): the
 * layout of objects, capacity past one ConfigMap, how stores agree on a layout,
 * and how they follow a bucket whose layout changed. (Every other behaviour is
 * the core suite's, which also runs on a 4-shard bucket.) Run against the
 * in-memory port (packages/core/test/kv.test.ts) and the real API server
 * (test/integration/core.test.ts).
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createKV,
  encodeKey,
  ForeignObjectError,
  InvalidOptionError,
  listBuckets,
  shardIndex,
  shardName,
  type KubeObject,
  type KV,
  type KVChangeEvent,
  type KVOptions,
} from '@k8s-kv/core';
import { countingApi } from '@k8s-kv/core/testing';
import { bucketName } from '../../../../test/support/test-helpers.ts';
import { objectsOfBucket, type KvTestEnv } from './kv-behaviour.ts';

const text = (bytes: Uint8Array | undefined): string | undefined => (bytes === undefined ? undefined : new TextDecoder().decode(bytes));
const indexOf = (key: string, shards: number): number => shardIndex(encodeKey(key).dataKey, shards);

/** `perShard` keys of each of `shards` shards. */
function keysPerShard(shards: number, perShard: number): string[] {
  const counts = new Array<number>(shards).fill(0);
  const keys: string[] = [];
  for (let i = 0; keys.length < shards * perShard; i++) {
    const key = `item-${i}`;
    const index = indexOf(key, shards);
    if (counts[index]! < perShard) {
      counts[index]! += 1;
      keys.push(key);
    }
  }
  return keys;
}

export function describeShardedBucket(name: string, getEnv: () => KvTestEnv): void {
  describe(`sharded bucket (${name})`, () => {
    const open: KV[] = [];
    const make = (options: Partial<KVOptions> = {}): KV => {
      const env = getEnv();
      const kv = createKV({ bucket: bucketName('shard'), namespace: env.namespace, api: env.api, ...options });
      open.push(kv);
      return kv;
    };
    const objectsOf = (bucket: string): Promise<Map<string, KubeObject>> => objectsOfBucket(getEnv(), bucket);
    afterEach(async () => {
      await Promise.all(open.splice(0).map((kv) => kv.close()));
    });

    it('keeps a head that records the shard count, and each entry in the shard its key hashes to', async () => {
      const kv = make({ shards: 8, app: 'layout' });
      const keys = Array.from({ length: 40 }, (_, i) => `user:${i}`);
      await kv.putMany(keys.map((key) => [key, `v-${key}`] as const));
      const objects = await objectsOf(kv.bucket);
      const head = objects.get(kv.bucket)!;
      expect(head.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'k8s-kv', 'k8s-kv.io/app': 'layout', 'k8s-kv.io/bucket': kv.bucket });
      expect(head.metadata.annotations).toMatchObject({ 'k8s-kv.io/format': '2', 'k8s-kv.io/shards': '8' });
      expect(head.binaryData ?? {}).toEqual({});
      const expected = new Map<string, string[]>();
      for (const key of keys) {
        const holder = shardName(kv.bucket, indexOf(key, 8));
        expected.set(holder, [...(expected.get(holder) ?? []), encodeKey(key).dataKey]);
      }
      // Only shards that hold a key exist.
      expect([...objects.keys()].filter((n) => n !== kv.bucket).sort()).toEqual([...expected.keys()].sort());
      for (const [holder, dataKeys] of expected) {
        const shard = objects.get(holder)!;
        expect(shard.metadata.annotations).toMatchObject({ 'k8s-kv.io/format': '2', 'k8s-kv.io/shard': `${holder.split('-').pop()}/8` });
        expect(shard.metadata.labels).toMatchObject({ 'k8s-kv.io/bucket': kv.bucket, 'k8s-kv.io/app': 'layout' });
        expect(Object.keys(shard.binaryData ?? {}).sort()).toEqual(dataKeys.sort());
      }
      expect(await kv.stats()).toMatchObject({ keys: 40, shards: 8, limitBytes: 8 * 1024 * 1024 });
      expect(await kv.keys('user:')).toEqual([...keys].sort());
    });

    it('holds more than one ConfigMap can', async () => {
      const kv = make({ shards: 4, cache: false });
      const keys = keysPerShard(4, 3);
      const values = new Map(keys.map((key) => [key, new Uint8Array(randomBytes(250_000))]));
      for (const [key, value] of values) await kv.put(key, value);
      const stats = await kv.stats();
      expect(stats.bytes).toBeGreaterThan(3_000_000);
      expect(stats).toMatchObject({ keys: 12, shards: 4 });
      const reader = make({ bucket: kv.bucket });
      const listed = await reader.list();
      expect(listed.size).toBe(12);
      for (const [key, value] of values) expect(listed.get(key)).toEqual(value);
    });

    it('touches only the shard a key lives in: a put is one patch, an uncached get reads the shard and the head', async () => {
      const env = getEnv();
      const counted = countingApi(env.api);
      const kv = make({ shards: 16, api: counted.api, cache: false });
      await kv.put('warm', 'up');
      await kv.put('other', 'up');
      counted.reset();
      await kv.put('warm', 'again');
      expect(counted.counts).toEqual({ jsonPatch: 1 });
      counted.reset();
      expect(await kv.getText('warm')).toBe('again');
      expect(counted.counts).toEqual({ get: 2 });
    });

    it('caches the head and every shard with one LIST and one watch by label', async () => {
      const env = getEnv();
      const writer = make({ shards: 8, cache: false });
      const keys = keysPerShard(8, 2);
      await writer.putMany(keys.map((key) => [key, key] as const));
      const counted = countingApi(env.api);
      const reader = make({ bucket: writer.bucket, api: counted.api });
      expect(await reader.keys()).toEqual([...keys].sort());
      for (const key of keys) expect(await reader.getText(key)).toBe(key);
      expect(counted.counts).toEqual({ list: 1, watch: 1 });
    });

    it('keeps the layout a bucket was created with, whatever later stores ask for', async () => {
      const plain = make();
      await plain.put('a', '1');
      const asked = make({ bucket: plain.bucket, shards: 8 });
      await asked.put('b', '2');
      expect((await asked.stats()).shards).toBe(1);
      expect(Object.keys((await objectsOf(plain.bucket)).get(plain.bucket)!.binaryData ?? {}).sort()).toEqual(['a', 'b']);

      const sharded = make({ shards: 4 });
      await sharded.put('a', '1');
      const unaware = make({ bucket: sharded.bucket, cache: false });
      await unaware.put('b', '2');
      expect(await unaware.stats()).toMatchObject({ shards: 4, keys: 2 });
      expect(await sharded.keys()).toEqual(['a', 'b']);
      expect((await objectsOf(sharded.bucket)).get(sharded.bucket)!.binaryData ?? {}).toEqual({});
    });

    it('stores that create a bucket at once agree on one layout, and every write lands', async () => {
      const bucket = bucketName('race');
      const stores = [4, 1, 4, 8].map((shards) => make({ bucket, shards, cache: false }));
      await Promise.all(stores.map((kv, i) => kv.putMany(Array.from({ length: 10 }, (_, j) => [`s${i}-${j}`, `${i}.${j}`] as const))));
      const reader = make({ bucket });
      expect((await reader.keys()).length).toBe(40);
      const objects = await objectsOf(bucket);
      const head = objects.get(bucket)!;
      const count = Number(head.metadata.annotations?.['k8s-kv.io/shards'] ?? '1');
      if (count > 1) {
        expect(head.binaryData ?? {}).toEqual({});
        for (const [objectName, object] of objects) {
          if (objectName === bucket) continue;
          for (const dataKey of Object.keys(object.binaryData ?? {})) expect(shardName(bucket, shardIndex(dataKey, count))).toBe(objectName);
        }
      } else {
        expect(objects.size).toBe(1);
      }
    });

    for (const cache of [false, true]) {
      it(`follows a bucket torn down and created again in the other layout (cache ${cache ? 'on' : 'off'})`, async () => {
        const first = make({ cache });
        await first.put('before', '1');
        expect(await first.getText('before')).toBe('1');
        const other = make({ bucket: first.bucket, shards: 4, cache: false });
        await other.teardown();
        await other.put('x', 'sharded now');
        const read = async (key: string): Promise<string | undefined> => {
          for (let i = 0; i < 200; i++) {
            const value = text(await first.get(key));
            if (value !== undefined) return value;
            await new Promise((r) => setTimeout(r, 20));
          }
          return undefined;
        };
        expect(await read('x')).toBe('sharded now');
        await first.put('y', 'from the first store');
        expect(await other.getText('y')).toBe('from the first store');
        expect((await objectsOf(first.bucket)).get(first.bucket)!.binaryData ?? {}).toEqual({});
        // And back to one object.
        const plain = make({ bucket: first.bucket, cache: false });
        await plain.teardown();
        await plain.put('z', 'plain again');
        expect(await read('z')).toBe('plain again');
        await first.put('w', 'w');
        expect(Object.keys((await objectsOf(first.bucket)).get(first.bucket)!.binaryData ?? {}).sort()).toEqual(['w', 'z']);
        expect((await objectsOf(first.bucket)).size).toBe(1);
      });
    }

    it('reports changes in every shard to watchers, and shows a store its own writes at once', async () => {
      const kv = make({ shards: 4 });
      const watcher = make({ bucket: kv.bucket });
      await kv.put('seed', 's');
      const events: KVChangeEvent[] = [];
      const stop = await watcher.watch((e) => events.push(e));
      const keys = keysPerShard(4, 1);
      for (const key of keys) {
        await kv.put(key, key);
        expect(await kv.getText(key)).toBe(key);
      }
      await kv.delete(keys[0]!);
      for (let i = 0; i < 250 && events.length < 5; i++) await new Promise((r) => setTimeout(r, 20));
      stop();
      expect(
        events
          .filter((e) => e.type === 'put')
          .map((e) => e.key)
          .sort(),
      ).toEqual([...keys].sort());
      expect(events.filter((e) => e.type === 'delete')).toEqual([{ type: 'delete', key: keys[0] }]);
    });

    it('keeps a watcher that subscribed before the bucket existed informed, through a change of layout', async () => {
      const bucket = bucketName('follow');
      const watcher = make({ bucket });
      const events: KVChangeEvent[] = [];
      const stop = await watcher.watch((e) => events.push(e));
      const writer = make({ bucket, shards: 4, cache: false });
      const keys = keysPerShard(4, 1);
      const waitFor = async (n: number) => {
        for (let i = 0; i < 250 && events.length < n; i++) await new Promise((r) => setTimeout(r, 20));
      };
      for (const key of keys) await writer.put(key, 'v');
      await waitFor(4);
      expect(events.map((e) => e.key).sort()).toEqual([...keys].sort());
      // Torn down and created again as one object: the watcher follows.
      await writer.teardown();
      const plain = make({ bucket, cache: false });
      await plain.put('plain', 'p');
      await waitFor(4 + 4 + 1);
      stop();
      expect(
        events
          .slice(4)
          .filter((e) => e.type === 'delete')
          .map((e) => e.key)
          .sort(),
      ).toEqual([...keys].sort());
      expect(events.at(-1)).toEqual({ type: 'put', key: 'plain' });
    });

    it('updates, deletes and clears across shards', async () => {
      const a = make({ shards: 4, cache: false });
      const b = make({ bucket: a.bucket });
      const counters = keysPerShard(4, 1);
      const bump = (kv: KV, key: string) => kv.update(key, (v) => String(Number(text(v) ?? '0') + 1));
      await Promise.all(counters.flatMap((key) => Array.from({ length: 5 }, () => [bump(a, key), bump(b, key)])).flat());
      for (const key of counters) expect(await a.getText(key)).toBe('10');
      expect(await b.deleteMany([counters[0]!, counters[1]!, 'missing'])).toEqual([true, true, false]);
      await a.putMany([
        ['keep:1', 'x'],
        ['drop:1', 'y'],
        ['drop:2', 'z'],
        ['drop:3', 'w'],
      ]);
      expect(await a.clear('drop:')).toBe(3);
      expect(await a.keys()).toEqual(['keep:1', counters[2]!, counters[3]!].sort());
    });

    it('deletes the head and every shard on teardown, and lists as one bucket', async () => {
      const env = getEnv();
      const kv = make({ shards: 4, app: 'listed' });
      await kv.putMany(keysPerShard(4, 2).map((key) => [key, 'v'] as const));
      const rows = (await listBuckets({ api: env.api, namespace: env.namespace, app: 'listed' })).filter((b) => b.name === kv.bucket);
      expect(rows).toEqual([expect.objectContaining({ name: kv.bucket, keys: 8, shards: 4, limitBytes: 4 * 1024 * 1024 })]);
      expect((await objectsOf(kv.bucket)).size).toBe(5);
      await kv.teardown();
      expect((await objectsOf(kv.bucket)).size).toBe(0);
      expect(await kv.keys()).toEqual([]);
    });

    it('refuses a shard opened as a bucket, and a shard count out of range', async () => {
      const kv = make({ shards: 2 });
      await kv.put('k', 'v');
      const holder = shardName(kv.bucket, indexOf('k', 2));
      await expect(make({ bucket: holder }).get('k')).rejects.toBeInstanceOf(ForeignObjectError);
      for (const shards of [0, 257, 1.5, Number.NaN]) expect(() => make({ shards })).toThrow(InvalidOptionError);
    });
  });
}
