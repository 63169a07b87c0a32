/**
 * Budgets, eviction and active expiry (engine/eviction.ts, engine/expiry-sweeper.ts),
 * written once and run twice: against the in-memory port
 * (packages/core/test/eviction.test.ts) and against the real API server
 * (test/integration/eviction.test.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BucketFullError, createKV, type KubeApi, type KV, type KVChangeEvent, type KVOptions } from '@k8s-kv/core';
import { countingApi, SPLIT_BYTES } from '@k8s-kv/core/testing';
import { hashSuffix, shardHash } from '../../src/codec/shard-hash.ts';
import { bucketName, eventually, manualClock } from '../../../../test/support/test-helpers.ts';
import { holdingWatches } from './port-wrappers.ts';

/** What a run of the suite needs from its environment. */
export interface EvictionTestEnv {
  /** A port with full rights. */
  api: KubeApi;
  /** A namespace that exists. */
  namespace: string;
}

/** A value of `size` bytes; stored as it is with `compress: false` (an entry takes 15 header bytes more, 23 with a TTL). */
const value = (i: number, size = 400): string => `${i}:`.padEnd(size, 'x');
const pad = (i: number): string => String(i).padStart(4, '0');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function describeEvictionBehaviour(name: string, getEnv: () => EvictionTestEnv, defaults: Partial<KVOptions> = {}): void {
  describe(`eviction and active expiry (${name})`, () => {
    const open: KV[] = [];
    const make = (options: Partial<KVOptions> = {}): KV => {
      const env = getEnv();
      const kv = createKV({ bucket: bucketName('evict'), namespace: env.namespace, api: env.api, compress: false, ...defaults, ...options });
      open.push(kv);
      return kv;
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((kv) => kv.close()));
    });

    it("an evicting store writing 10x its budget keeps working, never passes it, and keeps the newest entries ('oldest')", async () => {
      const clock = manualClock();
      const maxBytes = 8192;
      const kv = make({ evict: 'oldest', maxBytes, now: clock.now });
      const written: string[] = [];
      // 415-byte entries: 200 of them are 10x the budget.
      for (let i = 0; i < 200; i++) {
        clock.advance(1);
        const key = `k${pad(i)}`;
        if (i % 50 === 49) {
          // A batch too: one patch, evicting as much as it needs.
          const batch = [key, `${key}b`, `${key}c`];
          await kv.putMany(batch.map((k) => [k, value(i)] as const));
          written.push(...batch);
        } else {
          await kv.put(key, value(i));
          written.push(key);
        }
        expect((await kv.stats()).bytes).toBeLessThanOrEqual(maxBytes);
      }
      const kept = await kv.keys();
      // What the policy says: the least recently written went, so what is left is the newest, in full.
      expect(kept).toEqual(written.slice(written.length - kept.length).sort());
      expect(kept.length).toBeGreaterThanOrEqual(Math.floor((maxBytes - maxBytes / 16) / 415));
      expect(await kv.getText(written[0]!)).toBeUndefined();
      expect(await kv.getText(written.at(-1)!)).toBe(value(199));
      // Another store (another pod) sees the same.
      const other = make({ bucket: kv.bucket, cache: false });
      expect(await other.keys()).toEqual(kept);
    });

    it('an elastic bucket at its maxBytes evicts per part: each part keeps its share, and within it the newest', async () => {
      // Just over 1 MiB: the bucket splits up to maxBytes / SPLIT_BYTES parts, then each part keeps its share.
      const maxBytes = 1024 * 1024 + 1024;
      const maxParts = Math.floor(maxBytes / SPLIT_BYTES);
      const share = Math.floor(maxBytes / maxParts);
      const kv = make({ evict: 'oldest', maxBytes });
      const written: string[] = [];
      // About 3 MiB in batches of 100 KiB (one patch per part each).
      for (let batch = 0; batch < 30; batch++) {
        const keys = Array.from({ length: 100 }, (_, i) => `k${String(batch * 100 + i).padStart(5, '0')}`);
        await kv.putMany(keys.map((key, i) => [key, value(i, 1000)] as const));
        written.push(...keys);
      }
      const stats = await kv.stats();
      expect(stats).toMatchObject({ layout: 'elastic', shards: maxParts });
      expect(stats.bytes).toBeLessThanOrEqual(maxBytes);
      const { items } = await getEnv().api.list('ConfigMap', kv.namespace, { labelSelector: `k8s-kv.io/bucket=${kv.bucket}` });
      let parts = 0;
      for (const part of items) {
        const name = /\.p(\d+)-([0-9a-f]+)$/.exec(part.metadata.name);
        if (!name) continue;
        parts += 1;
        const [depth, suffix] = [Number(name[1]), Number.parseInt(name[2]!, 16)];
        const held = Object.keys(part.binaryData ?? {}).sort();
        const bytes = Object.values(part.binaryData ?? {}).reduce((sum, b64) => sum + Buffer.from(b64, 'base64').length, 0);
        expect(bytes).toBeLessThanOrEqual(share);
        // The keys a part holds are the most recently written of those its hash suffix routes to it.
        const routedHere = written.filter((key) => hashSuffix(shardHash(key), depth) === suffix);
        expect(held).toEqual(routedHere.slice(routedHere.length - held.length));
        expect(held.length).toBeGreaterThan(Math.floor(share / 1100 / 2)); // about half full at least (entries of ~1 KiB)
      }
      expect(parts).toBe(maxParts);
    }, 60_000);

    it("'expiring' evicts the entries closest to their expiry, those without a TTL last", async () => {
      const clock = manualClock();
      const kv = make({ evict: 'expiring', maxEntries: 4, now: clock.now });
      await kv.put('in-60s', 'a', { ttl: 60_000 });
      clock.advance(1);
      await kv.put('no-ttl', 'b');
      clock.advance(1);
      await kv.put('in-10s', 'c', { ttl: 10_000 });
      clock.advance(1);
      await kv.put('in-30s', 'd', { ttl: 30_000 });
      clock.advance(1);
      await kv.put('in-20s', 'e', { ttl: 20_000 });
      expect(await kv.keys()).toEqual(['in-20s', 'in-30s', 'in-60s', 'no-ttl']);
      await kv.putMany(
        [
          ['x', '1'],
          ['y', '2'],
        ],
        { ttl: 90_000 },
      );
      expect(await kv.keys()).toEqual(['in-60s', 'no-ttl', 'x', 'y']);
    });

    it('a plain store never evicts: a write over its budget fails with BucketFullError, which names the option, and changes nothing', async () => {
      const kv = make({ maxEntries: 3 });
      await kv.putMany([
        ['a', '1'],
        ['b', '2'],
        ['c', '3'],
      ]);
      const error = await kv.put('d', '4').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BucketFullError);
      expect(error).toMatchObject({ code: 'KV_BUCKET_FULL', entries: { current: 3, attempted: 4, limit: 3 } });
      expect((error as Error).message).toMatch(/evict: 'oldest'/);
      // Rewriting a key adds no entry: still fine.
      await kv.put('a', 'one');
      expect(await kv.keys()).toEqual(['a', 'b', 'c']);
      const bytes = make({ maxBytes: 2000 });
      await bytes.put('a', value(0, 1900));
      await expect(bytes.put('b', value(1, 100))).rejects.toMatchObject({
        code: 'KV_BUCKET_FULL',
        limitBytes: 2000,
        message: expect.stringMatching(/over the bucket's maxBytes \(2000\).*evict: 'oldest'/),
      });
      expect(await bytes.keys()).toEqual(['a']);
      // With eviction, the same write goes through; entries that would not fit even alone do not.
      const evicting = make({ maxBytes: 2000, evict: 'oldest' });
      await evicting.put('a', value(0, 1900));
      await evicting.put('b', value(1, 100));
      expect(await evicting.keys()).toEqual(['b']);
      await expect(evicting.put('c', value(2, 2000))).rejects.toMatchObject({
        code: 'KV_BUCKET_FULL',
        message: expect.stringMatching(/even with every other entry evicted/),
      });
      expect(await evicting.keys()).toEqual(['b']);
    });

    it('expired entries make room first, in the same patch as the write, with or without eviction', async () => {
      const clock = manualClock();
      const counted = countingApi(getEnv().api);
      const kv = make({ api: counted.api, maxEntries: 3, now: clock.now, cache: false });
      await kv.put('short', '1', { ttl: 1000 });
      await kv.putMany([
        ['b', '2'],
        ['c', '3'],
      ]);
      clock.advance(2000);
      counted.reset();
      await kv.put('d', '4');
      expect(counted.counts.jsonPatch).toBe(1);
      expect(await kv.keys()).toEqual(['b', 'c', 'd']);
      expect((await kv.stats()).expired).toBe(0);
    });

    it('a plan made on an old view never removes a newer value another store wrote', async () => {
      const env = getEnv();
      const held = holdingWatches(env.api);
      const clock = manualClock();
      const counted = countingApi(held.api);
      const a = make({ api: counted.api, evict: 'oldest', maxEntries: 4, now: clock.now });
      const b = make({ bucket: a.bucket, cache: false, now: clock.now });
      for (const key of ['k0', 'k1', 'k2', 'k3']) {
        clock.advance(1);
        await a.put(key, `old ${key}`);
      }
      expect(await a.keys()).toEqual(['k0', 'k1', 'k2', 'k3']); // a's cache runs, and shows k0 as the oldest
      held.hold();
      clock.advance(1);
      await b.put('k0', 'newer'); // k0 is now the newest, but a's view does not know
      expect(await a.getText('k0')).toBe('old k0');
      counted.reset();
      clock.advance(1);
      await a.put('k4', 'new');
      held.release();
      // a planned to evict k0 as it saw it; that removal's test failed at the server, and a
      // planned again on a fresh read: the oldest was then k1.
      expect(counted.counts.jsonPatch).toBe(2);
      expect(await b.getText('k0')).toBe('newer');
      expect(await b.keys()).toEqual(['k0', 'k2', 'k3', 'k4']);
    });

    it('update() stays within the budget too, evicting like a put', async () => {
      const clock = manualClock();
      const kv = make({ evict: 'oldest', maxEntries: 2, now: clock.now });
      await kv.put('a', '1');
      clock.advance(1);
      await kv.put('b', '2');
      clock.advance(1);
      expect(new TextDecoder().decode(await kv.update('counter', () => '1'))).toBe('1');
      expect(await kv.keys()).toEqual(['b', 'counter']);
      const plain = make({ maxEntries: 1 });
      await plain.put('a', '1');
      await expect(plain.update('b', () => '1')).rejects.toMatchObject({ code: 'KV_BUCKET_FULL', message: expect.stringMatching(/evict: 'oldest'/) });
      expect(await plain.update('a', () => '2')).toEqual(new TextEncoder().encode('2'));
    });

    it('a write removes expired entries once they hold more than a quarter of the object', async () => {
      const clock = manualClock();
      const kv = make({ now: clock.now, sweepInterval: 0 });
      await kv.putMany(Array.from({ length: 6 }, (_, i) => [`live${i}`, value(i)] as const));
      await kv.putMany([['soon0', value(0)]], { ttl: 1000 });
      expect(await kv.keys()).toHaveLength(7); // the cache runs: writes plan on it
      clock.advance(2000);
      // One expired of eight (12%): left for later.
      await kv.put('x', '1');
      expect((await kv.stats()).expired).toBe(1);
      await kv.putMany(
        Array.from({ length: 3 }, (_, i) => [`soon${i + 1}`, value(i)] as const),
        { ttl: 1000 },
      );
      clock.advance(2000);
      // Four expired of about twelve (over 25%): this write removes them.
      await kv.put('y', '2');
      expect((await kv.stats()).expired).toBe(0);
      expect(await kv.keys()).toEqual(['live0', 'live1', 'live2', 'live3', 'live4', 'live5', 'x', 'y']);
    });

    it('the sweep removes the expired entries of an idle bucket within its period, once, with several stores running', async () => {
      const env = getEnv();
      const period = 1500;
      const bucket = bucketName('sweep');
      const writer = make({ bucket, cache: false, sweepInterval: 0 });
      const counters = [0, 1, 2].map(() => countingApi(env.api));
      const stores = counters.map((c) => make({ bucket, api: c.api, sweepInterval: period }));
      await writer.putMany([
        ['keep-1', 'a'],
        ['keep-2', 'b'],
      ]);
      await writer.putMany(
        Array.from({ length: 5 }, (_, i) => [`gone-${i}`, `v${i}`] as const),
        { ttl: 300 },
      );
      const expiresAt = Date.now() + 300;
      const deletes: KVChangeEvent[] = [];
      const watcher = make({ bucket, sweepInterval: 0 });
      await watcher.watch((event) => {
        if (event.type === 'delete') deletes.push(event);
      });
      for (const store of stores) expect(await store.keys()).toHaveLength(7); // every cache runs (the sweeps with them)
      for (const c of counters) c.reset();
      await eventually(async () => expect((await writer.stats()).expired + (await writer.keys()).length).toBe(2), period + 5000);
      const sweptAt = Date.now();
      // Due half a period after expiry, and looked at within the next half period (a margin for a slow machine).
      expect(sweptAt - expiresAt).toBeLessThan(period + 1000);
      await sleep(period);
      // Every expired entry removed, each once; the live ones untouched; one sweep did it, not one per store.
      expect(deletes.map((e) => e.key).sort()).toEqual(['gone-0', 'gone-1', 'gone-2', 'gone-3', 'gone-4']);
      expect(await writer.keys()).toEqual(['keep-1', 'keep-2']);
      const patches = counters.reduce((sum, c) => sum + (c.counts.jsonPatch ?? 0), 0);
      expect(patches).toBeGreaterThanOrEqual(1);
      expect(patches).toBeLessThan(counters.length);
    }, 30_000);

    it('the sweep never starts in a store that only writes, and stops when the store is closed', async () => {
      const env = getEnv();
      const bucket = bucketName('nosweep');
      const writing = countingApi(env.api);
      const writer = make({ bucket, api: writing.api, sweepInterval: 200 });
      await writer.put('gone', 'x', { ttl: 1 });
      await sleep(5);
      const reading = countingApi(env.api);
      const reader = make({ bucket, api: reading.api, sweepInterval: 200 });
      expect(await reader.keys()).toEqual([]);
      await reader.close();
      writing.reset();
      reading.reset();
      await sleep(800); // four periods
      expect(writing.counts.jsonPatch ?? 0).toBe(0);
      expect(reading.counts.jsonPatch ?? 0).toBe(0);
      const inspect = make({ bucket, cache: false, sweepInterval: 0 });
      expect((await inspect.stats()).expired).toBe(1);
    }, 30_000);
  });
}
