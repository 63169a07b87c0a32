/**
 * The driver's conformance suite, written once and run against the in-memory
 * API (packages/unstorage-driver/test/driver.test.ts) and against a real API
 * server (test/integration/unstorage-driver.test.ts).
 *
 * Part 1 mirrors unstorage's own driver suite (test/drivers/utils.ts of
 * unjs/unstorage) check for check. Part 2 adds what this driver promises on
 * top: true binary values, keys with ":" and "$", TTL in seconds, getMeta,
 * batches, mounts, errors, and watch across two storages (two pods).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createStorage, restoreSnapshot, type Driver, type Storage, type WatchEvent } from 'unstorage';
import { InvalidOptionError, InvalidValueError, KVError, ValueTooLargeError } from '@k8s-kv/core';
import k8sKvDriver, { k8sKvDriverOf, type K8sKvDriverOptions } from '../src/index.ts';

/**
 * Driver options for a bucket. Two calls with the same bucket must reach the
 * same stored data (as two pods would), through separate core stores.
 */
export type MakeDriverOptions = (bucket: string) => K8sKvDriverOptions | Promise<K8sKvDriverOptions>;

/** Waits for other processes' writes to show (reads may come from a watch cache). */
const eventually = (assertion: () => unknown | Promise<unknown>) => vi.waitFor(assertion, { timeout: 15_000, interval: 25 });

function bucketName(label: string): string {
  return `unst-${label}-${randomBytes(4).toString('hex')}`;
}

/** A clock the TTL tests move by hand. */
function manualClock() {
  let t = Date.now();
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

export function describeDriverConformance(name: string, makeDriverOptions: MakeDriverOptions): void {
  // Generous per-test time: the cross-process checks wait for watch events.
  describe(`unstorage driver conformance: ${name}`, { timeout: 60_000 }, () => {
    /** Drivers created by a test, disposed after it. */
    const created: Driver[] = [];
    const makeDriver = async (bucket: string, extra: Partial<K8sKvDriverOptions> = {}) => {
      const driver = k8sKvDriver({ ...(await makeDriverOptions(bucket)), ...extra });
      created.push(driver);
      return driver;
    };
    const makeStorage = async (bucket: string, extra: Partial<K8sKvDriverOptions> = {}) => createStorage({ driver: await makeDriver(bucket, extra) });
    afterEach(async () => {
      await Promise.all(created.splice(0).map((d) => d.dispose?.()));
    });

    // Part 1: unstorage's own driver checks, same order, one storage for all
    // of them, cleared after each test.
    describe("unstorage's driver suite", () => {
      const ctx = {} as { driver: Driver; storage: Storage };

      beforeAll(async () => {
        ctx.driver = k8sKvDriver(await makeDriverOptions(bucketName('suite')));
        ctx.storage = createStorage({ driver: ctx.driver });
      });
      afterAll(async () => {
        await ctx.driver?.dispose?.();
        await ctx.storage?.dispose?.();
      });
      afterEach(async () => {
        await ctx.storage.clear();
      });

      it('init', async () => {
        await restoreSnapshot(ctx.storage, { initial: 'works' });
        expect(await ctx.storage.getItem('initial')).toBe('works');
        await ctx.storage.clear();
      });

      it('initial state', async () => {
        expect(await ctx.storage.hasItem('s1:a')).toBe(false);
        expect(await ctx.storage.getItem('s2:a')).toBe(null);
        expect(await ctx.storage.getKeys()).toMatchObject([]);
      });

      it('setItem', async () => {
        await ctx.storage.setItem('s1:a', 'test_data');
        await ctx.storage.setItem('s2:a', 'test_data');
        await ctx.storage.setItem('s3:a?q=1', 'test_data');
        expect(await ctx.storage.hasItem('s1:a')).toBe(true);
        expect(await ctx.storage.getItem('s1:a')).toBe('test_data');
        expect(await ctx.storage.getItem('s3:a?q=2')).toBe('test_data');
      });

      it('getKeys', async () => {
        await ctx.storage.setItem('s1:a', 'test_data');
        await ctx.storage.setItem('s2:a', 'test_data');
        await ctx.storage.setItem('s3:a?q=1', 'test_data');
        expect(await ctx.storage.getKeys().then((k) => k.sort())).toMatchObject(['s1:a', 's2:a', 's3:a'].sort());
        expect(await ctx.storage.getKeys('s1').then((k) => k.sort())).toMatchObject(['s1:a'].sort());
      });

      it('getKeys with depth', async () => {
        await ctx.storage.setItem('depth0_0', 'test_data');
        await ctx.storage.setItem('depth0:depth1:depth2_0', 'test_data');
        await ctx.storage.setItem('depth0:depth1:depth2_1', 'test_data');
        await ctx.storage.setItem('depth0:depth1_0', 'test_data');
        await ctx.storage.setItem('depth0:depth1_1', 'test_data');
        expect(await ctx.storage.getKeys(undefined, { maxDepth: 0 })).toMatchObject(['depth0_0']);
        expect((await ctx.storage.getKeys(undefined, { maxDepth: 1 })).sort()).toMatchObject(['depth0:depth1_0', 'depth0:depth1_1', 'depth0_0']);
        expect((await ctx.storage.getKeys(undefined, { maxDepth: 2 })).sort()).toMatchObject([
          'depth0:depth1:depth2_0',
          'depth0:depth1:depth2_1',
          'depth0:depth1_0',
          'depth0:depth1_1',
          'depth0_0',
        ]);
      });

      it('serialize (object)', async () => {
        await ctx.storage.setItem('/data/test.json', { json: 'works' });
        expect(await ctx.storage.getItem('/data/test.json')).toMatchObject({ json: 'works' });
      });

      it('serialize (primitive)', async () => {
        await ctx.storage.setItem('/data/true.json', true);
        expect(await ctx.storage.getItem('/data/true.json')).toBe(true);
      });

      it('serialize (lossy object with toJSON())', async () => {
        class Test1 {
          toJSON() {
            return 'SERIALIZED';
          }
        }
        await ctx.storage.setItem('/data/serialized1.json', new Test1());
        expect(await ctx.storage.getItem('/data/serialized1.json')).toBe('SERIALIZED');
        class Test2 {
          toJSON() {
            return { serializedObj: 'works' };
          }
        }
        await ctx.storage.setItem('/data/serialized2.json', new Test2());
        expect(await ctx.storage.getItem('/data/serialized2.json')).toMatchObject({ serializedObj: 'works' });
      });

      it('serialize (error for non primitives)', async () => {
        class Test {}
        await expect(ctx.storage.setItem('/data/badvalue.json', new Test())).rejects.toThrow('[unstorage] Cannot stringify value!');
      });

      it('raw support', async () => {
        const value = new Uint8Array([1, 2, 3]);
        await ctx.storage.setItemRaw('/data/raw.bin', value);
        const rValue = await ctx.storage.getItemRaw('/data/raw.bin');
        const rValueLen = rValue?.length || rValue?.byteLength;
        expect(rValueLen).toBe(value.length);
        expect(Buffer.from(rValue).toString('base64')).toBe(Buffer.from(value).toString('base64'));
      });

      it('setItems', async () => {
        await ctx.storage.setItems([
          { key: 't:1', value: 'test_data_t1' },
          { key: 't:2', value: 'test_data_t2' },
          { key: 't:3', value: 'test_data_t3' },
        ]);
        expect(await ctx.storage.getItem('t:1')).toBe('test_data_t1');
        expect(await ctx.storage.getItem('t:2')).toBe('test_data_t2');
        expect(await ctx.storage.getItem('t:3')).toBe('test_data_t3');
      });

      it('getItems', async () => {
        await ctx.storage.setItem('v3:a?q=1', 'test_data_v3:a?q=1');
        await ctx.storage.setItem('v2:a', 'test_data_v2:a');
        await ctx.storage.setItem('v1:a', 'test_data_v1:a');
        expect(await ctx.storage.getItems([{ key: 'v1:a' }, 'v2:a', { key: 'v3:a?q=1' }, 'v4:undefined'])).toMatchObject([
          { key: 'v1:a', value: 'test_data_v1:a' },
          { key: 'v2:a', value: 'test_data_v2:a' },
          { key: 'v3:a', value: 'test_data_v3:a?q=1' }, // the key loses the query string
          { key: 'v4:undefined', value: null },
        ]);
      });

      it('getItem - return falsy values when set in storage', async () => {
        await ctx.storage.setItem('zero', 0);
        expect(await ctx.storage.getItem('zero')).toBe(0);
        await ctx.storage.setItem('my-false-flag', false);
        expect(await ctx.storage.getItem('my-false-flag')).toBe(false);
      });

      it('removeItem', async () => {
        await ctx.storage.setItem('s1:a', 'test_data');
        await ctx.storage.removeItem('s1:a', false);
        expect(await ctx.storage.hasItem('s1:a')).toBe(false);
        expect(await ctx.storage.getItem('s1:a')).toBe(null);
      });

      it('clear', async () => {
        await ctx.storage.clear();
        expect(await ctx.storage.getKeys()).toMatchObject([]);
        // clearing an empty storage works too (unjs/unstorage#162)
        await ctx.storage.clear();
        expect(await ctx.storage.getKeys()).toMatchObject([]);
      });
    });

    // Part 2: what this driver adds.
    describe('driver contract', () => {
      it('keeps raw values as bytes: every byte value round-trips, nothing is base64-encoded into a string', async () => {
        const driver = await makeDriver(bucketName('raw'));
        const storage = createStorage({ driver });
        const all = Uint8Array.from({ length: 256 }, (_, i) => i);
        const notUtf8 = new Uint8Array([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80]);
        await storage.setItemRaw('bin:all', all);
        await storage.setItemRaw('bin:bad-utf8', Buffer.from(notUtf8));
        await storage.setItemRaw('bin:empty', new Uint8Array(0));
        await storage.setItemRaw('bin:view', new DataView(all.buffer, 10, 4));
        await storage.setItemRaw('bin:arraybuffer', all.buffer.slice(250));

        const back = await storage.getItemRaw<Uint8Array>('bin:all');
        expect(back).toBeInstanceOf(Uint8Array);
        expect([...back!]).toEqual([...all]);
        expect([...(await storage.getItemRaw<Uint8Array>('bin:bad-utf8'))!]).toEqual([...notUtf8]);
        expect((await storage.getItemRaw<Uint8Array>('bin:empty'))?.length).toBe(0);
        expect([...(await storage.getItemRaw<Uint8Array>('bin:view'))!]).toEqual([10, 11, 12, 13]);
        expect([...(await storage.getItemRaw<Uint8Array>('bin:arraybuffer'))!]).toEqual([250, 251, 252, 253, 254, 255]);

        // Stored as bytes (not text, not a "base64:..." string of setItem).
        const entry = await (driver.getInstance!() as import('@k8s-kv/core').KV).getEntry('bin:all');
        expect(entry?.text).toBe(false);
        expect(entry?.value.length).toBe(256);
        // A text value read raw gives its UTF-8 bytes.
        await storage.setItem('text', 'héllo');
        expect(Buffer.from((await storage.getItemRaw<Uint8Array>('text'))!).toString('utf8')).toBe('héllo');
        expect(await storage.getItemRaw('bin:missing')).toBe(null);
      });

      it('round-trips keys with ":" segments, "$" (meta keys) and any characters', async () => {
        const storage = await makeStorage(bucketName('keys'));
        const keys = ['a', 'a:b:c', 'a:b$', '$', 'x$y', 'with space:ünïcødé:😀', 'dots.in.segment:-_~!@#%^&*()[]{}', 'UPPER:lower', 'a'.repeat(300)];
        for (const [i, key] of keys.entries()) await storage.setItem(key, `v${i}`);
        for (const [i, key] of keys.entries()) expect(await storage.getItem(key)).toBe(`v${i}`);
        // The storage layer hides meta keys ("...$") from listings; the driver itself lists them.
        expect((await storage.getKeys()).sort()).toEqual(keys.filter((k) => !k.endsWith('$')).sort());
        const driver = storage.getMount('').driver;
        expect((await driver.getKeys('', {})).sort()).toEqual([...keys].sort());
        // "/" and "\" are normalized to ":" by the storage layer.
        expect(await storage.getItem('a/b\\c')).toBe('v1');
      });

      it('keeps unstorage meta (setMeta / getMeta / removeItem with removeMeta)', async () => {
        const storage = await makeStorage(bucketName('meta'));
        await storage.setItem('doc', 'body');
        await storage.setMeta('doc', { owner: 'ada', mtime: new Date('2020-01-02T03:04:05Z') });
        const meta = await storage.getMeta('doc');
        expect(meta.owner).toBe('ada');
        expect(meta.mtime).toEqual(new Date('2020-01-02T03:04:05Z'));
        expect(await storage.getKeys()).toEqual(['doc']);
        await storage.removeItem('doc', { removeMeta: true });
        expect(await storage.getMount('').driver.getKeys('', {})).toEqual([]);
      });

      it('getMeta: mtime, size and the remaining ttl in seconds', async () => {
        const clock = manualClock();
        const storage = await makeStorage(bucketName('getmeta'), { now: clock.now });
        await storage.setItem('plain', 'x'.repeat(100));
        const plain = await storage.getMeta('plain', { nativeOnly: true });
        expect(plain.mtime).toBeInstanceOf(Date);
        expect(plain.mtime!.getTime()).toBe(clock.now());
        expect(plain.size).toBeGreaterThan(0);
        expect(plain.ttl).toBeUndefined();

        await storage.setItem('timed', 'x', { ttl: 60 });
        expect((await storage.getMeta('timed')).ttl).toBe(60);
        clock.advance(20_500);
        expect((await storage.getMeta('timed')).ttl).toBe(40);

        expect(await storage.getMeta('missing', { nativeOnly: true })).toEqual({});
      });

      it('expires items after their ttl in seconds (per write, per batch item, raw, default option, 0 = none)', async () => {
        const clock = manualClock();
        const bucket = bucketName('ttl');
        const storage = await makeStorage(bucket, { now: clock.now });
        const withDefault = await makeStorage(bucket, { now: clock.now, ttl: 30 });
        await storage.setItem('ttl:short', 'a', { ttl: 10 });
        await storage.setItem('ttl:long', 'b', { ttl: 100 });
        await storage.setItem('ttl:none', 'c');
        await storage.setItemRaw('ttl:raw', new Uint8Array([1]), { ttl: 10 });
        await storage.setItems(
          [
            { key: 'ttl:batch-short', value: 'd', options: { ttl: 10 } },
            { key: 'ttl:batch-long', value: 'e' },
          ],
          { ttl: 100 },
        );
        await withDefault.setItem('ttl:default', 'f');
        await withDefault.setItem('ttl:zero', 'g', { ttl: 0 });

        clock.advance(9_000);
        await eventually(async () => expect((await storage.getKeys('ttl')).length).toBe(8));
        expect(await storage.getItem('ttl:short')).toBe('a');

        clock.advance(2_000); // 11 s
        expect(await storage.hasItem('ttl:short')).toBe(false);
        expect(await storage.getItem('ttl:short')).toBe(null);
        expect(await storage.getItemRaw('ttl:raw')).toBe(null);
        expect((await storage.getKeys('ttl')).sort()).toEqual(['ttl:batch-long', 'ttl:default', 'ttl:long', 'ttl:none', 'ttl:zero']);

        clock.advance(20_000); // 31 s
        expect((await storage.getKeys('ttl')).sort()).toEqual(['ttl:batch-long', 'ttl:long', 'ttl:none', 'ttl:zero']);

        clock.advance(70_000); // 101 s
        expect((await storage.getKeys('ttl')).sort()).toEqual(['ttl:none', 'ttl:zero']);
        expect(await storage.getItems(['ttl:long', 'ttl:none'])).toEqual([
          { key: 'ttl:long', value: null },
          { key: 'ttl:none', value: 'c' },
        ]);
      });

      it('setItems / getItems: one batch, in order, with missing and repeated keys', async () => {
        const storage = await makeStorage(bucketName('batch'));
        await storage.setItems(Array.from({ length: 50 }, (_, i) => ({ key: `b:${i}`, value: { i } })));
        const keys = ['b:49', 'nope', 'b:0', 'b:7', 'b:0', 'b:missing'];
        expect(await storage.getItems(keys)).toEqual([
          { key: 'b:49', value: { i: 49 } },
          { key: 'nope', value: null },
          { key: 'b:0', value: { i: 0 } },
          { key: 'b:7', value: { i: 7 } },
          { key: 'b:0', value: { i: 0 } },
          { key: 'b:missing', value: null },
        ]);
        expect(await storage.getItems([])).toEqual([]);
        // The last write of a key within a batch wins.
        await storage.setItems([
          { key: 'dup', value: 'first' },
          { key: 'dup', value: 'second' },
        ]);
        expect(await storage.getItem('dup')).toBe('second');
      });

      it('getKeys(base) and clear(base) act on that base only; clear of the mount leaves other mounts alone', async () => {
        const bucket = bucketName('clear');
        const driver = await makeDriver(bucket);
        const storage = createStorage({ driver });
        await storage.setItems(['a:1', 'a:2', 'a:b:3', 'ab:4', 'c'].map((key) => ({ key, value: key })));
        expect((await storage.getKeys('a')).sort()).toEqual(['a:1', 'a:2', 'a:b:3']);
        expect(await storage.getKeys('a:b')).toEqual(['a:b:3']);
        // unstorage 1.17 only calls a driver's clear for a base that is a
        // mount point (storage.clear('a') on a root mount does nothing, for
        // every driver), so clear(base) is checked on the driver itself.
        await driver.clear!('a:', {});
        expect((await storage.getKeys()).sort()).toEqual(['ab:4', 'c']);

        // Mounted under a prefix of a storage: keys are relative to the mount.
        const mounted = createStorage().mount('mnt', await makeDriver(bucket));
        await eventually(async () => expect((await mounted.getKeys()).sort()).toEqual(['mnt:ab:4', 'mnt:c']));
        await mounted.setItem('mnt:m:1', 'one');
        await mounted.setItem('local', 'memory driver');
        expect((await mounted.getKeys()).sort()).toEqual(['local', 'mnt:ab:4', 'mnt:c', 'mnt:m:1']);
        expect(await mounted.getKeys('mnt:m')).toEqual(['mnt:m:1']);
        expect(await mounted.getKeys('mnt', { maxDepth: 1 })).toEqual(['mnt:c']);
        await mounted.clear('mnt');
        expect(await mounted.getKeys()).toEqual(['local']);
        await eventually(async () => expect(await storage.getKeys()).toEqual([]));
      });

      it('the base option gives mounts separate key spaces in one bucket', async () => {
        const bucket = bucketName('base');
        const storage = createStorage()
          .mount('data', await makeDriver(bucket, { base: 'data' }))
          .mount('cache', await makeDriver(bucket, { base: 'cache:' }));
        await storage.setItem('data:x', 'data x');
        await storage.setItem('cache:x', 'cache x');
        expect(await storage.getItem('data:x')).toBe('data x');
        expect(await storage.getItem('cache:x')).toBe('cache x');
        expect((await storage.getKeys()).sort()).toEqual(['cache:x', 'data:x']);
        await storage.clear('cache');
        expect(await storage.getKeys()).toEqual(['data:x']);
        const whole = await makeStorage(bucket);
        await eventually(async () => expect(await whole.getKeys()).toEqual(['data:x']));
      });

      it("sees another process's writes, and that process sees its own", async () => {
        const bucket = bucketName('two');
        const a = await makeStorage(bucket);
        const b = await makeStorage(bucket);
        await a.setItem('shared', { from: 'a' });
        expect(await a.getItem('shared')).toEqual({ from: 'a' });
        await eventually(async () => expect(await b.getItem('shared')).toEqual({ from: 'a' }));
        await b.setItem('shared', { from: 'b' });
        expect(await b.getItem('shared')).toEqual({ from: 'b' });
        await eventually(async () => expect(await a.getItem('shared')).toEqual({ from: 'b' }));
        await b.removeItem('shared');
        await eventually(async () => expect(await a.hasItem('shared')).toBe(false));
      });

      it('watch: events for changes made by another storage (another pod), keys relative to the mount', async () => {
        const bucket = bucketName('watch');
        const writer = await makeStorage(bucket);
        const reader = createStorage().mount('mnt', await makeDriver(bucket));
        const events: Array<[WatchEvent, string]> = [];
        const unwatch = await reader.watch((event, key) => {
          events.push([event, key]);
        });

        await writer.setItem('w:1', 'one');
        await eventually(() => expect(events).toContainEqual(['update', 'mnt:w:1']));
        await writer.setItemRaw('w:raw', new Uint8Array([1, 2]));
        await writer.setItems([
          { key: 'w:2', value: 2 },
          { key: 'w:3', value: 3 },
        ]);
        await eventually(() => {
          expect(events).toContainEqual(['update', 'mnt:w:raw']);
          expect(events).toContainEqual(['update', 'mnt:w:2']);
          expect(events).toContainEqual(['update', 'mnt:w:3']);
        });
        await writer.removeItem('w:1');
        await eventually(() => expect(events).toContainEqual(['remove', 'mnt:w:1']));
        await writer.clear();
        await eventually(() => {
          expect(events).toContainEqual(['remove', 'mnt:w:2']);
          expect(events).toContainEqual(['remove', 'mnt:w:3']);
          expect(events).toContainEqual(['remove', 'mnt:w:raw']);
        });
        expect(events.every(([event]) => event === 'update' || event === 'remove')).toBe(true);

        // The watching storage's own writes are reported too (storage stops
        // emitting local events for a driver that has watch).
        await reader.setItem('mnt:own', 'mine');
        await eventually(() => expect(events).toContainEqual(['update', 'mnt:own']));

        await unwatch();
      });

      it('watch: the function it returns unsubscribes (driver level)', async () => {
        const bucket = bucketName('unwatch');
        const writer = await makeStorage(bucket);
        const driver = await makeDriver(bucket);
        const first: string[] = [];
        const second: string[] = [];
        const stopFirst = await driver.watch!((_event, key) => {
          first.push(key);
        });
        const stopSecond = await driver.watch!((_event, key) => {
          second.push(key);
        });
        await writer.setItem('one', '1');
        await eventually(() => {
          expect(first).toEqual(['one']);
          expect(second).toEqual(['one']);
        });
        await stopFirst();
        await writer.setItem('two', '2');
        await eventually(() => expect(second).toEqual(['one', 'two']));
        expect(first).toEqual(['one']);
        await stopSecond();
        await stopSecond(); // twice is harmless
      });

      it('watch with the base option: only that base, keys without it', async () => {
        const bucket = bucketName('watchbase');
        const writer = await makeStorage(bucket);
        const reader = createStorage({ driver: await makeDriver(bucket, { base: 'only' }) });
        const keys: string[] = [];
        const unwatch = await reader.watch((_event, key) => {
          keys.push(key);
        });
        await writer.setItem('other:k', '1');
        await writer.setItem('only:k', '2');
        await eventually(() => expect(keys).toContain('k'));
        expect(keys).not.toContain('other:k');
        expect(keys).not.toContain('only:k');
        await unwatch();
      });

      it('errors: core\'s typed errors, their message "[unstorage] [k8s-kv] bucket ...: ..." naming the bucket, the original as cause', async () => {
        const thrown = (fn: () => unknown) => {
          try {
            fn();
          } catch (error) {
            return error;
          }
          throw new Error('did not throw');
        };
        expect(thrown(() => k8sKvDriver({} as K8sKvDriverOptions))).toMatchObject({
          message: expect.stringMatching(/^\[unstorage\] \[k8s-kv\] Missing required option `bucket`/),
          code: 'KV_INVALID_OPTION',
        });
        expect(thrown(() => k8sKvDriver({ bucket: 'Not_A_Name' }))).toMatchObject({
          message: expect.stringMatching(/^\[unstorage\] \[k8s-kv\] Invalid bucket name "Not_A_Name"/),
          code: 'KV_INVALID_BUCKET_NAME',
        });
        expect(thrown(() => k8sKvDriver({ bucket: 'ok', ttl: -5 }))).toMatchObject({ code: 'KV_INVALID_OPTION' });

        const bucket = bucketName('errors');
        const storage = await makeStorage(bucket);
        const badTtl = await storage.setItem('k', 'v', { ttl: -1 }).catch((error: unknown) => error);
        expect(badTtl).toBeInstanceOf(InvalidOptionError);
        expect((badTtl as Error).message).toBe(`[unstorage] [k8s-kv] bucket "${bucket}": ttl must be a finite number of seconds >= 0, got -1.`);
        expect(badTtl).toMatchObject({
          code: 'KV_INVALID_OPTION',
          option: 'ttl',
          cause: expect.objectContaining({ message: 'ttl must be a finite number of seconds >= 0, got -1.' }),
        });

        const tooLarge = await storage.setItemRaw('huge', randomBytes(1536 * 1024)).catch((error: unknown) => error);
        expect(tooLarge).toBeInstanceOf(KVError);
        expect(tooLarge).toBeInstanceOf(ValueTooLargeError);
        expect((tooLarge as Error).message).toMatch(new RegExp(`^\\[unstorage\\] \\[k8s-kv\\] bucket "${bucket}": Value for key "huge" is \\d+ bytes`));
        expect(tooLarge).toMatchObject({ name: 'ValueTooLargeError', code: 'KV_VALUE_TOO_LARGE', key: 'huge', cause: expect.any(ValueTooLargeError) });
        expect((tooLarge as Error).stack).toContain(`bucket "${bucket}"`);

        const badRaw = await storage.setItemRaw('obj', { not: 'bytes' }).catch((error: unknown) => error);
        expect(badRaw).toMatchObject({ code: 'KV_INVALID_VALUE' });
        expect(await storage.getKeys()).toEqual([]);
      });

      it('update and increment are atomic: 50 concurrent increments over two drivers (two pods) count exactly', async () => {
        const bucket = bucketName('counter');
        const a = await makeDriver(bucket, { base: 'app' });
        const b = await makeDriver(bucket, { base: 'app' });
        const storageA = createStorage();
        storageA.mount('data', a);
        const storageB = createStorage();
        storageB.mount('data', b);
        const results = await Promise.all(Array.from({ length: 50 }, (_, i) => k8sKvDriverOf(i % 2 ? storageA : storageB, 'data').increment('visits')));
        expect([...results].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
        expect(await storageA.getItem('data:visits')).toBe(50);
        await eventually(async () => expect(await storageB.getItem('data:visits')).toBe(50));
        // Keys are normalized as the storage layer normalizes them, and the mount's base applies.
        expect(await k8sKvDriverOf(storageA, 'data').increment('users/42/visits', 5, { ttl: 60 })).toBe(5);
        expect(await storageA.getItem('data:users:42:visits')).toBe(5);
        expect((await storageA.getMeta('data:users:42:visits')).ttl).toBeGreaterThan(50);
        const kv = a.getInstance!() as import('@k8s-kv/core').KV;
        expect(await kv.getText('app:visits')).toBe('50');

        const updated = await k8sKvDriverOf(storageA, 'data').update('profile', (current) => JSON.stringify({ ...JSON.parse(current ?? '{}'), seen: true }));
        expect(updated).toBe('{"seen":true}');
        expect(await storageA.getItem('data:profile')).toEqual({ seen: true });
        expect(await k8sKvDriverOf(storageA, 'data').update('profile', () => null)).toBeNull();
        expect(await storageA.hasItem('data:profile')).toBe(false);

        await storageA.setItem('data:word', 'hello');
        const notNumber = await k8sKvDriverOf(storageA, 'data')
          .increment('word')
          .catch((error: unknown) => error);
        expect(notNumber).toBeInstanceOf(InvalidValueError);
        expect((notNumber as Error).message).toBe(
          `[unstorage] [k8s-kv] bucket "${bucket}": Key "word" holds "hello", not a number: increment() cannot add to it.`,
        );
        expect(() => k8sKvDriverOf(storageA, 'cache')).toThrow(
          /^\[unstorage\] \[k8s-kv\] No k8s-kv driver is mounted at "cache": the mount there is driver "memory" at ""/,
        );
        await Promise.all([storageA.dispose(), storageB.dispose()]);
      });

      it('creating a driver does not touch or mutate its options; dispose lets the process go and a later call starts again', async () => {
        const options = Object.freeze({ ...(await makeDriverOptions(bucketName('lazy'))), ttl: 60 });
        const snapshot = { ...options };
        const driver = k8sKvDriver(options);
        created.push(driver);
        expect(driver.name).toBe('k8s-kv');
        expect(driver.options).toBe(options);
        expect(driver.flags).toEqual({ ttl: true });
        expect({ ...options }).toEqual(snapshot);
        await driver.dispose!(); // before any use: nothing to close

        const storage = createStorage({ driver });
        const unwatch = await storage.watch(() => {});
        await storage.setItem('k', 'v');
        const kv = driver.getInstance!() as import('@k8s-kv/core').KV;
        expect(kv.bucket).toBe(options.bucket);
        await unwatch();
        await storage.dispose();
        await expect(kv.get('k')).rejects.toMatchObject({ code: 'KV_CLOSED' });
        // The driver makes a new store on the next call.
        expect(await storage.getItem('k')).toBe('v');
        expect({ ...options }).toEqual(snapshot);
      });
    });
  });
}
