/**
 * What is particular to elastic buckets (format 3, the default): a bucket of one
 * ConfigMap that splits into parts as it grows (docs/FORMAT.md section 9) - the
 * objects it makes, reads and writes across splits, several stores writing while
 * parts split, a split stopped at any step, events, and the maxBytes cap. Run
 * against the in-memory port (packages/core/test/kv.test.ts) and the real API
 * server (test/integration/core.test.ts).
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { BucketFullError, createKV, listBuckets, type KubeObject, type KV, type KVChangeEvent, type KVOptions } from '@k8s-kv/core';
import { countingApi, SPLIT_BYTES, SPLIT_HOOK, SPLIT_STEPS, type SplitStep } from '@k8s-kv/core/testing';
import { encodeKey } from '../../src/codec/key-codec.ts';
import { bucketSelector } from '../../src/engine/ownership.ts';
import { splitObject, type SplitTarget } from '../../src/engine/split.ts';
import { bucketName, eventually, withCallers } from '../../../../test/support/test-helpers.ts';
import { objectsOfBucket, type KvTestEnv } from './kv-behaviour.ts';
import { cuttableWatches, holdingWatches, overriding } from './port-wrappers.ts';

const text = (bytes: Uint8Array | undefined): string | undefined => (bytes === undefined ? undefined : new TextDecoder().decode(bytes));
/** A value of about 450 bytes once stored (random, so it does not compress). */
const value = (): string => randomBytes(330).toString('base64');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A promise and what settles it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Stops a split before `step`, as a crash would (the store's other work goes on). */
class Crash extends Error {}

export function describeElasticBucket(name: string, getEnv: () => KvTestEnv): void {
  describe(`elastic bucket (${name})`, () => {
    const open: KV[] = [];
    const make = (options: Partial<KVOptions> & { [SPLIT_HOOK]?: (step: SplitStep, object: string) => void } = {}): KV => {
      const env = getEnv();
      const kv = createKV({ bucket: bucketName('el'), namespace: env.namespace, api: env.api, ...options });
      open.push(kv);
      return kv;
    };
    const objectsOf = (bucket: string): Promise<Map<string, KubeObject>> => objectsOfBucket(getEnv(), bucket);
    /** The parts the server holds: name -> annotations and entry count. */
    const partsOf = async (bucket: string): Promise<KubeObject[]> => [...(await objectsOf(bucket)).values()].filter((o) => o.metadata.name !== bucket);
    /** The part of `bucket` that holds `key` on the server, as a split target. */
    const partHolding = async (bucket: string, key: string): Promise<SplitTarget> => {
      const part = (await partsOf(bucket)).find((p) => p.binaryData?.[encodeKey(key).dataKey] !== undefined)!;
      const [depth, suffix] = part.metadata.annotations!['k8s-kv.io/part']!.split('/').map(Number) as [number, number];
      return { name: part.metadata.name, depth, suffix };
    };
    /** Another process (no store of this suite) splits the part of `bucket` that holds `key`, to the end. */
    const splitAsAnotherProcess = async (bucket: string, key: string): Promise<void> => {
      const env = getEnv();
      const context = { kind: 'ConfigMap' as const, namespace: env.namespace, bucket, app: 'default', api: env.api, now: Date.now };
      expect((await splitObject(context, await partHolding(bucket, key))).outcome).toBe('split');
    };
    /** Writes keys `<prefix><i>` for i from `start` to `start + count - 1` in batches of 20; resolves to what was written. */
    const fill = async (kv: KV, prefix: string, count: number, model = new Map<string, string>(), start = 0): Promise<Map<string, string>> => {
      for (let i = start; i < start + count; i += 20) {
        const batch = Array.from({ length: Math.min(20, start + count - i) }, (_, j) => [`${prefix}${i + j}`, value()] as [string, string]);
        await kv.putMany(batch);
        for (const [k, v] of batch) model.set(k, v);
      }
      return model;
    };
    /**
     * Waits until no split of the bucket is under way or due: no object sealed, no part pending,
     * and (unless the bucket is at its maxBytes, `capped`) no object past the split threshold.
     */
    const settled = async (bucket: string, capped = false): Promise<void> => {
      await eventually(async () => {
        for (const object of (await objectsOf(bucket)).values()) {
          expect(object.metadata.annotations?.['k8s-kv.io/sealed'], object.metadata.name).toBeUndefined();
          expect(object.metadata.annotations?.['k8s-kv.io/split-from'], object.metadata.name).toBeUndefined();
          const bytes = Object.values(object.binaryData ?? {}).reduce((sum, b64) => sum + Buffer.from(b64, 'base64').length, 0);
          if (!capped) expect(bytes, object.metadata.name).toBeLessThanOrEqual(SPLIT_BYTES);
        }
      }, 30_000);
    };
    /** Every key of `model` reads back from a fresh store (cache on and off), and nothing else is there. */
    const expectHolds = async (bucket: string, model: Map<string, string>): Promise<void> => {
      for (const cache of [false, true]) {
        const reader = make({ bucket, cache });
        expect(await reader.keys(), `cache ${cache}`).toEqual([...model.keys()].sort());
        for (const [k, v] of model) expect(text(await reader.get(k)), `${k}, cache ${cache}`).toBe(v);
        const listed = await reader.list();
        expect(listed.size).toBe(model.size);
      }
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((kv) => kv.close()));
    });

    it('starts as one ConfigMap, splits in two past 12 KiB, and the parts split on as it grows; every key stays readable', async () => {
      const kv = make();
      await kv.put('first', 'small');
      let objects = await objectsOf(kv.bucket);
      expect([...objects.keys()]).toEqual([kv.bucket]);
      expect(objects.get(kv.bucket)!.metadata.annotations?.['k8s-kv.io/format']).toBe('1');
      // ~180 KiB of entries (7x the split threshold): the root splits, and its children split again.
      const model = await fill(kv, 'k', 400, new Map([['first', 'small']]));
      await settled(kv.bucket);
      objects = await objectsOf(kv.bucket);
      const head = objects.get(kv.bucket)!;
      expect(head.metadata.annotations?.['k8s-kv.io/format']).toBe('3');
      expect(head.binaryData ?? {}).toEqual({});
      const parts = await partsOf(kv.bucket);
      expect(parts.length).toBeGreaterThanOrEqual(3);
      for (const part of parts) {
        const [depth, suffix] = part.metadata.annotations!['k8s-kv.io/part']!.split('/').map(Number) as [number, number];
        expect(part.metadata.name).toBe(`${kv.bucket}.p${depth}-${suffix.toString(16)}`);
        expect(part.metadata.annotations!['k8s-kv.io/head-uid']).toBe(head.metadata.uid);
        expect(part.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'k8s-kv', 'k8s-kv.io/bucket': kv.bucket });
        const bytes = Object.values(part.binaryData ?? {}).reduce((sum, b64) => sum + Buffer.from(b64, 'base64').length, 0);
        expect(bytes).toBeLessThanOrEqual(SPLIT_BYTES + 20 * 500); // the threshold, and at most one batch past it
      }
      const stats = await kv.stats();
      expect(stats).toMatchObject({ keys: model.size, layout: 'elastic', shards: parts.length, limitBytes: 64 * 1024 * 1024 });
      await expectHolds(kv.bucket, model);
      const [row] = await listBuckets({ api: getEnv().api, namespace: getEnv().namespace, app: 'default' }).then((rows) =>
        rows.filter((r) => r.name === kv.bucket),
      );
      expect(row).toMatchObject({ keys: model.size, shards: parts.length, layout: 'elastic' });
      // Deletes, updates and clears across parts.
      expect(await kv.deleteMany(['k0', 'k1', 'missing'])).toEqual([true, true, false]);
      model.delete('k0');
      model.delete('k1');
      await kv.update('k2', (v) => `${text(v)}!`);
      model.set('k2', `${model.get('k2')}!`);
      expect(await kv.clear('k3')).toBe([...model.keys()].filter((k) => k.startsWith('k3')).length);
      for (const k of [...model.keys()]) if (k.startsWith('k3')) model.delete(k);
      await expectHolds(kv.bucket, model);
      await kv.teardown();
      expect((await objectsOf(kv.bucket)).size).toBe(0);
    });

    it('keeps every acknowledged write while parts split under several stores writing, deleting and updating at once', async () => {
      const bucket = bucketName('el-many');
      const stores = [make({ bucket }), make({ bucket, cache: false }), make({ bucket }), make({ bucket, cache: false })];
      const model = new Map<string, string>();
      const counters = ['counter-a', 'counter-b'];
      await Promise.all(
        stores.map(async (kv, w) => {
          for (let round = 0; round < 12; round++) {
            const batch = Array.from({ length: 15 }, (_, j) => [`w${w}-${round}-${j}`, value()] as [string, string]);
            await kv.putMany(batch);
            for (const [k, v] of batch) model.set(k, v);
            for (const counter of counters) await kv.update(counter, (v) => String(Number(text(v) ?? '0') + 1));
            if (round % 3 === 2) {
              const gone = batch.slice(0, 5).map(([k]) => k);
              expect(await kv.deleteMany(gone)).toEqual(gone.map(() => true));
              for (const k of gone) model.delete(k);
            }
          }
        }),
      );
      for (const counter of counters) model.set(counter, String(stores.length * 12));
      await settled(bucket);
      expect((await partsOf(bucket)).length).toBeGreaterThanOrEqual(4);
      await expectHolds(bucket, model);
    });

    for (const step of SPLIT_STEPS) {
      it(`a split stopped before "${step}" is finished by the next store that writes there, and nothing is lost, doubled or brought back`, async () => {
        let crashed = false;
        const crashing = make({
          // The first split this store runs stops before `step`; the store is closed right after, as if it died.
          [SPLIT_HOOK]: (at: SplitStep) => {
            if (at !== step || crashed) return;
            crashed = true;
            throw new Crash(`stopped before ${step}`);
          },
          onError: () => {},
        });
        const bucket = crashing.bucket;
        await crashing.put('deleted-before', 'x');
        const below = Math.floor((SPLIT_BYTES * 0.6) / 450); // keys of ~450 bytes that stay below the threshold
        const model = await fill(crashing, 'k', below);
        await crashing.delete('deleted-before');
        // Past the threshold: the split starts after the write that crossed it, and stops.
        for (let i = below; !crashed && i < 600; i += 20) await fill(crashing, 'k', 20, model, i);
        await eventually(() => expect(crashed).toBe(true));
        await crashing.close();
        // What a crash at this step leaves: the head sealed (after "seal"), pending children (after "copy").
        const objects = await objectsOf(bucket);
        const head = objects.get(bucket)!;
        if (step === 'seal') expect(head.metadata.annotations?.['k8s-kv.io/sealed']).toBeUndefined();
        else expect(head.metadata.annotations?.['k8s-kv.io/format'] === '3' || head.metadata.annotations?.['k8s-kv.io/sealed'] !== undefined).toBe(true);
        // A fresh store reads everything as it is, whatever step the split stopped at.
        await expectHolds(bucket, model);
        // Its writes go through (finishing a split left sealed), and so do later splits.
        const writer = make({ bucket });
        await fill(writer, 'later', 200, model);
        await writer.delete('k5');
        model.delete('k5');
        await settled(bucket);
        expect((await objectsOf(bucket)).get(bucket)!.metadata.annotations?.['k8s-kv.io/format']).toBe('3');
        await expectHolds(bucket, model);
        expect(model.has('deleted-before')).toBe(false);
      });
    }

    it('a split helper slower than the split, and than the splits after it, brings nothing back', async () => {
      // The first split `late` runs stops before its copy until released: another store finishes that
      // split meanwhile, and the parts it made split again, before `late` goes on.
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      let paused = false;
      const late = make({
        [SPLIT_HOOK]: async (at: SplitStep) => {
          if (at !== 'copy' || paused) return;
          paused = true;
          await gate;
        },
        onError: () => {},
      });
      const bucket = late.bucket;
      try {
        // Past the threshold (keys of ~450 bytes) in one write, and no write after it: `late`'s next write would wait for its own split.
        const model = new Map(Array.from({ length: Math.ceil(SPLIT_BYTES / 450) + 20 }, (_, i) => [`k${i}`, value()] as [string, string]));
        await late.putMany([...model]);
        await eventually(() => expect(paused).toBe(true));
        const other = make({ bucket, cache: false });
        await fill(other, 'more', 240, model);
        await settled(bucket);
        const split = (await partsOf(bucket)).map((part) => part.metadata.annotations!['k8s-kv.io/part']!);
        expect(split.filter((part) => part.startsWith('1/'))).toEqual([]); // both halves of the root split again
        release();
        await late.close();
        expect((await partsOf(bucket)).map((part) => part.metadata.annotations!['k8s-kv.io/part']).sort()).toEqual(split.sort());
        await expectHolds(bucket, model);
      } finally {
        release();
      }
    }, 60_000);

    it('a part brought back after its range split again is never read or written, and is removed', async () => {
      const kv = make({ cache: false });
      const bucket = kv.bucket;
      const model = await fill(kv, 'k', 360);
      await settled(bucket);
      const objects = await objectsOf(bucket);
      const head = objects.get(bucket)!;
      const deep = (await partsOf(bucket)).find((part) => Number(part.metadata.annotations!['k8s-kv.io/part']!.split('/')[0]) >= 2)!;
      expect(deep, 'a part two splits down').toBeDefined();
      const [, suffix] = deep.metadata.annotations!['k8s-kv.io/part']!.split('/').map(Number) as [number, number];
      // What a late copier of the root's split would create: the depth-1 part over `deep`'s range, holding its entries as
      // they were (they change below), pending on a copy of the root.
      const name = `${bucket}.p1-${(suffix % 2).toString(16)}`;
      expect(objects.has(name)).toBe(false);
      await getEnv().api.create('ConfigMap', getEnv().namespace, {
        metadata: {
          name,
          labels: deep.metadata.labels,
          annotations: { ...deep.metadata.annotations, 'k8s-kv.io/part': `1/${suffix % 2}`, 'k8s-kv.io/split-from': `${head.metadata.uid}@1` },
        },
        binaryData: deep.binaryData,
      });
      // Writers and readers go on with the parts that hold the range, with the cache and without: every entry
      // the copy holds is overwritten or deleted.
      const keys = [...model.keys()];
      const gone = keys.filter((_, i) => i % 4 === 0);
      expect(await make({ bucket }).deleteMany(gone)).toEqual(gone.map(() => true));
      for (const key of gone) model.delete(key);
      const kept = [...model.keys()];
      for (let i = 0; i < kept.length; i += 20) {
        const batch = kept.slice(i, i + 20).map((key) => [key, `new ${key}`] as [string, string]);
        await kv.putMany(batch);
        for (const [key, v] of batch) model.set(key, v);
      }
      await expectHolds(bucket, model);
      // A reader that listed the bucket deleted the copy.
      await eventually(async () => expect((await objectsOf(bucket)).has(name)).toBe(false));
      await expectHolds(bucket, model);
    });

    it('a write whose part is split between its read and its patch lands in the part that holds the key now', async () => {
      const env = getEnv();
      // Another process's split of the part, run just before this store's patch reaches the server.
      let splitBefore: string | undefined;
      let splits = 0;
      const api = overriding(env.api, {
        jsonPatch: async (ref, ops, options) => {
          if (ref.name === splitBefore) {
            splitBefore = undefined;
            const part = (await env.api.get(ref)).metadata.annotations!['k8s-kv.io/part']!;
            const [depth, suffix] = part.split('/').map(Number) as [number, number];
            const identity = { kind: 'ConfigMap' as const, namespace: env.namespace, bucket: ref.name.slice(0, ref.name.lastIndexOf('.p')), app: 'default' };
            const { outcome } = await splitObject({ ...identity, api: env.api, now: Date.now }, { name: ref.name, depth, suffix });
            expect(outcome).toBe('split');
            splits++;
          }
          return env.api.jsonPatch(ref, ops, options);
        },
      });
      for (const cache of [false, true]) {
        const kv = make({ api, cache });
        const model = await fill(kv, 'k', 120);
        await settled(kv.bucket);
        /** The part that holds a key now. */
        const holder = async (key: string): Promise<string> =>
          (await partsOf(kv.bucket)).find((part) => part.binaryData?.[encodeKey(key).dataKey] !== undefined)!.metadata.name;
        const keys = [...model.keys()];
        splitBefore = await holder(keys[0]!);
        expect(await kv.delete(keys[0]!), `delete, cache ${cache}`).toBe(true);
        model.delete(keys[0]!);
        splitBefore = await holder(keys[1]!);
        await kv.put(keys[1]!, 'put across a split');
        model.set(keys[1]!, 'put across a split');
        splitBefore = await holder(keys[2]!);
        await kv.update(keys[2]!, (v) => `${text(v)}+`);
        model.set(keys[2]!, `${model.get(keys[2]!)}+`);
        await kv.put('gone/1', 'x');
        splitBefore = await holder('gone/1');
        expect(await kv.clear('gone/'), `clear, cache ${cache}`).toBe(1);
        expect(splitBefore, 'every write met a split').toBeUndefined();
        await expectHolds(kv.bucket, model);
      }
      expect(splits).toBe(8);
    });

    it("reads this store's own write after it waited out another process's split, whose switch its watch has not shown yet", async () => {
      const env = getEnv();
      // This store's watch: its events can be held back (in order) until released.
      const watches = holdingWatches(env.api);
      const gates = { switch: deferred(), activate: deferred() };
      let holdTidying = false;
      const api = overriding(watches.api, {
        // This store's own tidying of the children waits with the other process's: the children stay pending meanwhile.
        jsonPatch: async (ref, ops, options) => {
          if (holdTidying && ops.some((op) => op.op === 'remove' && op.path.endsWith('split-from'))) await gates.activate.promise;
          return env.api.jsonPatch(ref, ops, options);
        },
      });
      const kv = make({ api });
      const bucket = kv.bucket;
      const model = await fill(kv, 'k', 120);
      await settled(bucket);
      expect(await kv.keys()).toHaveLength(model.size); // starts the cache
      const key = [...model.keys()][0]!;
      const part = await partHolding(bucket, key);
      // Another process splits the key's part, and stops before its switch, then before its activation.
      const reached = { switch: deferred(), activate: deferred() };
      const identity = { kind: 'ConfigMap' as const, namespace: env.namespace, bucket, app: 'default' };
      holdTidying = true;
      const other = splitObject(
        {
          ...identity,
          api: env.api,
          now: Date.now,
          beforeStep: async (step) => {
            if (step !== 'switch' && step !== 'activate') return;
            reached[step].resolve();
            await gates[step].promise;
          },
        },
        part,
      );
      try {
        await reached.switch.promise;
        // This store's watch shows the part sealed and its children, and nothing after: not the switch.
        const now = Math.max(...[...(await objectsOf(bucket)).values()].map((o) => Number(o.metadata.resourceVersion)));
        await eventually(() => expect(watches.delivered).toBeGreaterThanOrEqual(now));
        watches.hold();
        gates.switch.resolve();
        await reached.activate.promise;
        // The put meets the seal in the cache, waits a moment, finds the part gone, and writes to the child.
        await kv.put(key, 'written across the switch');
        expect(text(await kv.get(key))).toBe('written across the switch');
        expect((await kv.list()).size).toBe(model.size);
      } finally {
        gates.switch.resolve();
        gates.activate.resolve();
        await other.catch(() => undefined);
        watches.release();
      }
      expect(text(await kv.get(key))).toBe('written across the switch');
    });

    it('reads and clears across a split that ends between its read of the layout and its reads of the parts, while its watch is down', async () => {
      const env = getEnv();
      const watches = cuttableWatches(env.api);
      /** Runs once after this store's next read of the layout (a LIST of the parts' metadata), before the store sees its answer. */
      let afterLayoutRead: (() => Promise<unknown>) | undefined;
      const api = overriding(watches.api, {
        list: async (kind, namespace, selectors, options) => {
          const list = await watches.api.list(kind, namespace, selectors, options);
          const then = options?.metadataOnly ? afterLayoutRead : undefined;
          afterLayoutRead = undefined;
          await then?.();
          return list;
        },
      });
      const kv = make({ api });
      const bucket = kv.bucket;
      const model = await fill(kv, 'k', 120);
      await settled(bucket);
      expect(await kv.keys()).toHaveLength(model.size); // starts the cache
      // The watch is down: reads read the layout, then the parts, from the server.
      watches.cut();
      try {
        const [first, second] = [...model.keys()];
        afterLayoutRead = () => splitAsAnotherProcess(bucket, first!);
        expect(text(await kv.get(first!))).toBe(model.get(first!));
        // The layout this store read is stale again: it plans the clear on it, and reads the parts.
        await splitAsAnotherProcess(bucket, second!);
        expect(await kv.clear()).toBe(model.size);
      } finally {
        watches.restore();
      }
      await expectHolds(bucket, new Map());
    });

    it('routes again on a newer layout when the LIST it read was answered before a split it knows has ended', async () => {
      const env = getEnv();
      /** The answer the next LIST of the layout gets instead of the server's (one the server gave earlier). */
      let stale: Awaited<ReturnType<typeof env.api.list>> | undefined;
      const api = overriding(env.api, {
        list: async (...args) => {
          if (!args[3]?.metadataOnly) return env.api.list(...args);
          const answer = stale ?? (await env.api.list(...args));
          stale = undefined;
          return answer;
        },
      });
      const kv = make({ api, cache: false });
      const bucket = kv.bucket;
      const model = await fill(kv, 'k', 120);
      await settled(bucket);
      const key = [...model.keys()][0]!;
      await kv.put(key, 'before'); // this store knows the key's part
      // What a LIST answered before the split below, and another process splits the key's part.
      const before = await env.api.list('ConfigMap', env.namespace, { labelSelector: bucketSelector(bucket) }, { metadataOnly: true });
      await splitAsAnotherProcess(bucket, key);
      // The put finds the part gone (404) and reads the layout: the LIST it gets was answered before the split.
      stale = before;
      await kv.put(key, 'after');
      expect(text(await kv.get(key))).toBe('after');
    });

    it('a store that splits its bucket as it writes learns the new parts from its own splits, not from LISTs', async () => {
      const counted = countingApi(getEnv().api);
      const kv = make({ cache: false, api: counted.api });
      const model = await fill(kv, 'k', 240);
      await kv.close(); // waits for the splits under way
      const parts = await partsOf(kv.bucket);
      expect(parts.length).toBeGreaterThanOrEqual(8);
      // Each split tells it the parts that replace the one split, the first (of the bucket's own object) included:
      // no LIST is needed (one at most, should the layout it knows have been forgotten for another reason).
      expect(counted.counts.list ?? 0).toBeLessThanOrEqual(1);
      await expectHolds(kv.bucket, model);
    });

    it('a store that splits its bucket under many callers sends no write into its own seal and reads no part it made', async () => {
      const counted = countingApi(getEnv().api);
      /** The status of each patch the server refused. */
      const refused: number[] = [];
      const api = overriding(counted.api, {
        jsonPatch: async (...args) => {
          try {
            return await counted.api.jsonPatch(...args);
          } catch (error) {
            refused.push((error as { status?: number }).status ?? 0);
            throw error;
          }
        },
      });
      const kv = make({ cache: false, api });
      const model = new Map<string, string>();
      await withCallers(300, 16, async (i) => {
        const written = value();
        await kv.put(`k${i}`, written);
        model.set(`k${i}`, written);
      });
      await kv.close(); // waits for the splits under way
      const splits = (await partsOf(kv.bucket)).length - 1;
      expect(splits).toBeGreaterThanOrEqual(7);
      // Its writes waited for its splits: none met a seal (422) or a part switched away (404).
      expect(refused).toEqual([]);
      // One GET per split (its first look at the object) and one for the first write, none before a
      // write to a part a split made (a slow moment may cost a split one more look: two allowed).
      expect(counted.counts.get ?? 0).toBeLessThanOrEqual(splits + 3);
      await expectHolds(kv.bucket, model);
    });

    it('a put that waited for a turn on the wire while this process split its part goes to the part that now holds its key', async () => {
      const env = getEnv();
      const writer = make({ cache: false });
      const model = await fill(writer, 'k', 240);
      await settled(writer.bucket);
      const parts = await partsOf(writer.bucket);
      const holding = (key: string): string => parts.find((part) => part.binaryData?.[encodeKey(key).dataKey] !== undefined)!.metadata.name;
      const key = 'k0';
      const target = holding(key);
      // One key in each of four other parts: their puts take the store's four turns on the wire (write-limit.ts INITIAL_WRITES).
      const others: string[] = [];
      for (const k of model.keys()) if (![target, ...others.map(holding)].includes(holding(k)) && others.length < 4) others.push(k);
      /** Parts whose patches are held back (their writes stay on the wire) until released. */
      const heldParts = new Set<string>();
      const held: Array<() => void> = [];
      const refused: number[] = [];
      const api = overriding(env.api, {
        jsonPatch: async (...args) => {
          if (heldParts.has(args[0].name)) await new Promise<void>((resolve) => held.push(resolve));
          try {
            return await env.api.jsonPatch(...args);
          } catch (error) {
            refused.push((error as { status?: number }).status ?? 0);
            throw error;
          }
        },
      });
      const atSeal = deferred();
      const goOn = deferred();
      const switched = deferred();
      const kv = make({
        bucket: writer.bucket,
        cache: false,
        api,
        [SPLIT_HOOK]: async (step: SplitStep, object: string) => {
          if (object !== target) return;
          if (step === 'seal') {
            atSeal.resolve();
            await goOn.promise;
          }
          if (step === 'activate') switched.resolve();
        },
      });
      // The key's part past the threshold in one put: its split starts, and stops before the seal.
      await kv.put(key, randomBytes(9000).toString('base64'));
      await atSeal.promise;
      for (const k of others) heldParts.add(holding(k));
      const blocking = others.map((k) => kv.put(k, 'blocking'));
      await eventually(() => expect(held).toHaveLength(4));
      // This put waits for a turn; meanwhile the split seals (none of its part's writes is on the wire) and switches.
      const late = kv.put(key, 'late');
      goOn.resolve();
      await switched.promise;
      heldParts.clear();
      for (const resolve of held) resolve();
      await Promise.all([...blocking, late]);
      // It routed again to the part holding its key: no patch met the deleted part (404) or a seal (422).
      expect(refused).toEqual([]);
      expect(text(await kv.get(key))).toBe('late');
      expect((await partsOf(writer.bucket)).map((part) => part.metadata.name)).not.toContain(target);
    });

    it('keeps fewer writes on the wire while the server queues them', async () => {
      const env = getEnv();
      let onWire = 0;
      /** The writes on the wire as each was sent. */
      const sent: number[] = [];
      const api = overriding(env.api, {
        jsonPatch: async (...args) => {
          sent.push(++onWire);
          try {
            await sleep(2 + onWire); // a server whose answers take 1 ms more for each write on the wire: a queue
            return await env.api.jsonPatch(...args);
          } finally {
            onWire--;
          }
        },
      });
      const writer = make({ cache: false });
      const model = await fill(writer, 'k', 720);
      await settled(writer.bucket);
      expect((await partsOf(writer.bucket)).length).toBeGreaterThanOrEqual(32);
      const kv = make({ bucket: writer.bucket, cache: false, api });
      const keys = [...model.keys()];
      // 48 callers rewrite the keys in turn (put i + 720 of a key starts after put i of it ended).
      await withCallers(1800, 48, async (i) => {
        const key = keys[i % keys.length]!;
        await kv.put(key, `v${i}`);
        model.set(key, `v${i}`);
      });
      // Without a limit, each part with a put waiting has one on the wire (30-31 seen); the limit follows the queue down (9-17 seen).
      expect(Math.max(...sent.slice(sent.length / 2))).toBeLessThanOrEqual(22);
      await expectHolds(kv.bucket, model);
    });

    it('writes to a part its cache shows with one patch, without reading the part first', async () => {
      const counted = countingApi(getEnv().api);
      const writer = make({ cache: false });
      const model = await fill(writer, 'k', 120);
      await settled(writer.bucket);
      const kv = make({ bucket: writer.bucket, api: counted.api });
      expect(await kv.keys()).toHaveLength(model.size); // starts the cache
      const parts = await partsOf(writer.bucket);
      expect(parts.length).toBeGreaterThanOrEqual(2);
      // One key of each part: this store has written to none of them yet.
      const keys = parts.map((part) => [...model.keys()].find((k) => part.binaryData?.[encodeKey(k).dataKey] !== undefined)!);
      counted.reset();
      for (const key of keys) await kv.put(key, 'rewritten');
      expect(counted.counts).toEqual({ jsonPatch: keys.length });
      for (const key of keys) expect(text(await kv.get(key))).toBe('rewritten');
    });

    it('tells watchers of every change once, and of no split', async () => {
      const bucket = bucketName('el-watch');
      const watcher = make({ bucket });
      const events: KVChangeEvent[] = [];
      const stop = await watcher.watch((e) => events.push(e));
      const writer = make({ bucket, cache: false });
      const model = await fill(writer, 'w', 300);
      await writer.delete('w7');
      await settled(bucket);
      await eventually(() => expect(events.length).toBe(301), 30_000);
      await sleep(200);
      stop();
      expect(
        events
          .filter((e) => e.type === 'put')
          .map((e) => e.key)
          .sort(),
      ).toEqual([...model.keys()].sort());
      expect(events.filter((e) => e.type === 'delete')).toEqual([{ type: 'delete', key: 'w7' }]);
      expect((await partsOf(bucket)).length).toBeGreaterThanOrEqual(2);
    });

    it('stops growing at maxBytes, then refuses writes that would grow it with BucketFullError', async () => {
      const maxBytes = Math.ceil(1_310_720 / SPLIT_BYTES) * SPLIT_BYTES; // over 1 MiB (a bucket that splits), in whole parts
      const kv = make({ maxBytes });
      const batchBytes = 10 * 4100;
      let full: unknown;
      for (let i = 0; i < 1000 && !full; i += 10) {
        const batch = Array.from({ length: 10 }, (_, j) => [`k${i + j}`, randomBytes(3000).toString('base64')] as [string, string]);
        full = await kv.putMany(batch).catch((e: unknown) => e);
      }
      expect(full).toBeInstanceOf(BucketFullError);
      expect(full).toMatchObject({ code: 'KV_BUCKET_FULL', maxBytes });
      expect((full as Error).message).toMatch(/maxBytes/);
      await settled(kv.bucket, true);
      const stats = await kv.stats();
      expect(stats.shards).toBeLessThanOrEqual(maxBytes / SPLIT_BYTES);
      // A part may pass its share by the one write after which it would have split.
      expect(stats.bytes).toBeLessThanOrEqual(maxBytes + stats.shards * batchBytes);
      expect(stats.limitBytes).toBe(maxBytes);
      // What is there can still be read, overwritten and deleted.
      const [some] = await kv.keys();
      await kv.put(some!, 'smaller');
      expect(await kv.getText(some!)).toBe('smaller');
      expect(await kv.delete(some!)).toBe(true);
    });

    it('a format-1 bucket written before splits at its first write past the threshold', async () => {
      const env = getEnv();
      const old = make({ maxBytes: 1_048_576 }); // a store that keeps one object, like a client before format 3
      const model = await fill(old, 'old', 300);
      await old.close();
      expect((await objectsOf(old.bucket)).size).toBe(1);
      const kv = make({ bucket: old.bucket });
      await kv.put('new', 'one more');
      model.set('new', 'one more');
      // The split runs after the put, in the background.
      await eventually(async () => expect((await objectsOf(old.bucket)).size).toBeGreaterThan(2));
      await settled(old.bucket);
      await expectHolds(old.bucket, model);
      expect(env.namespace).toBeTruthy();
    });
  });
}
