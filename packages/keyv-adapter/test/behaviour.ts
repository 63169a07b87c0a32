/**
 * The Keyv adapter's behaviour, written once and run twice: against the
 * in-memory port (packages/keyv-adapter/test/adapter.test.ts) and against the
 * real API server (test/integration/keyv-adapter.test.ts, and
 * test/integration/keyv6-smoke.test.ts for the Keyv 6 part).
 *
 * Part 1 runs @keyv/test-suite (keyvTestSuite and keyvIteratorTests) with
 * Keyv 5. Part 2 checks what the adapter promises on top. Part 3 drives it
 * with Keyv 6.
 */
import { randomBytes } from 'node:crypto';
import * as vitest from 'vitest';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import Keyv from 'keyv';
import { createKV, ForbiddenError, InvalidValueError, ClosedError, type KubeApi, type KV, type KVOptions } from '@k8s-kv/core';
import { countingApi } from '@k8s-kv/core/testing';
import { createKeyv, enableIterator, KeyvK8sKv, type KeyvK8sKvOptions } from '../src/index.ts';

/** What a run of the suite needs from its environment. */
export interface KeyvAdapterTestEnv {
  /** A port with full rights in `kubeNamespace`. */
  api: KubeApi;
  /** A namespace that exists. */
  kubeNamespace: string;
  /** A port whose identity has no rights on configmaps in `kubeNamespace`. */
  forbiddenApi: KubeApi;
  /** A port whose identity may get, create, patch and delete configmaps in `kubeNamespace`, but not list or watch them. */
  noWatchApi: KubeApi;
}

/** The suites of @keyv/test-suite 2.1.2 (they live in the test workspace). */
export interface KeyvTestSuites {
  // biome-ignore lint/suspicious/noExplicitAny: the suite's own signature
  keyvTestSuite: (test: any, keyv: any, store: () => any) => void;
  // biome-ignore lint/suspicious/noExplicitAny: the suite's own signature
  keyvIteratorTests: (test: any, keyv: any, store: () => any) => void;
}

/** Keyv 6's class (keyv@6, installed in the test workspace as "keyv6"). */
// biome-ignore lint/suspicious/noExplicitAny: Keyv 6's types are not this package's dev dependency
export type Keyv6Class = new (...args: any[]) => any;

const total = (counts: Record<string, number>): number => Object.values(counts).reduce((a, b) => a + b, 0);

let serial = 0;
/** A fresh bucket name. */
export function bucketName(prefix = 'kv'): string {
  serial += 1;
  return `keyv-${prefix}-${process.pid}-${serial}-${randomBytes(3).toString('hex')}`;
}

/** A clock the expiry tests move by hand. */
function manualClock(start = Date.now()) {
  let now = start;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

/**
 * Tracks the adapters and stores a test creates and closes them after it, so
 * watches do not pile up (the test suites create several stores per test).
 */
function tracker() {
  const open: Array<{ disconnect(): Promise<void> } | KV> = [];
  const closeAll = async () => {
    const items = open.splice(0);
    await Promise.all(items.map((item) => ('disconnect' in item ? item.disconnect() : item.close())));
  };
  return {
    track<T extends { disconnect(): Promise<void> } | KV>(item: T): T {
      open.push(item);
      return item;
    },
    closeAll,
  };
}

/** Vitest's API for @keyv/test-suite (it calls `test.it`, `test.beforeEach`, `test.afterEach`). */
function suiteApi(): typeof vitest {
  return vitest;
}

/** Keyv 5 with `iterator()` wired for our adapter, as `createKeyv` does (see the README on Keyv 5's allow-list). */
class IterableKeyv extends Keyv {
  // biome-ignore lint/suspicious/noExplicitAny: Keyv's constructor arguments
  constructor(...args: any[]) {
    super(...(args as ConstructorParameters<typeof Keyv>));
    enableIterator(this);
  }
}

/** Parts 1 and 2: @keyv/test-suite with Keyv 5, and the adapter's own promises under Keyv 5. */
export function describeKeyvAdapter(label: string, suites: KeyvTestSuites, getEnv: () => KeyvAdapterTestEnv): void {
  const opened = tracker();
  afterAll(opened.closeAll);

  const kvOptions = (bucket: string, extra: Partial<KVOptions> = {}): KVOptions => ({
    bucket,
    api: getEnv().api,
    namespace: getEnv().kubeNamespace,
    ...extra,
  });
  const adapterOptions = (bucket: string, extra: Partial<KeyvK8sKvOptions> = {}): KeyvK8sKvOptions => ({
    bucket,
    api: getEnv().api,
    kubeNamespace: getEnv().kubeNamespace,
    ...extra,
  });
  /** A k8s-kv store on a bucket, to look at what the adapter stored (closed after the test). */
  const inspect = (bucket: string, extra: Partial<KVOptions> = {}): KV => opened.track(createKV(kvOptions(bucket, { cache: false, ...extra })));
  const adapter = (bucket: string, extra: Partial<KeyvK8sKvOptions> = {}): KeyvK8sKv => opened.track(new KeyvK8sKv(adapterOptions(bucket, extra)));

  describe(`Keyv adapter (${label})`, () => {
    afterEach(opened.closeAll);

    describe('@keyv/test-suite with Keyv 5: a new adapter (and k8s-kv store) per store() call', () => {
      const bucket = bucketName('suite-own');
      const perTest = tracker();
      // Registered before the suite's hooks, so it runs after them (after-hooks run in reverse).
      afterEach(perTest.closeAll);
      const store = () => perTest.track(new KeyvK8sKv(adapterOptions(bucket)));
      suites.keyvTestSuite(suiteApi(), Keyv, store);
      suites.keyvIteratorTests(suiteApi(), IterableKeyv, store);
    });

    describe('@keyv/test-suite with Keyv 5 on a bucket of 4 shards (the shards option)', () => {
      const bucket = bucketName('suite-shards');
      const perTest = tracker();
      afterEach(perTest.closeAll);
      const store = () => perTest.track(new KeyvK8sKv(adapterOptions(bucket, { shards: 4 })));
      suites.keyvTestSuite(suiteApi(), Keyv, store);
      suites.keyvIteratorTests(suiteApi(), IterableKeyv, store);
      it('keeps the items in the shards', async () => {
        const adapter = store();
        await adapter.set('keyv:sharded', 'v');
        expect(await inspect(bucket).stats()).toMatchObject({ shards: 4 });
      });
    });

    describe('@keyv/test-suite with Keyv 5: adapters sharing one k8s-kv store (the `kv` option)', () => {
      // One store per test, shared by every adapter of the test. (Some suite tests
      // leave a call running when they end; a store shared across tests would let it
      // act on the next test's data.)
      const bucket = bucketName('suite-shared');
      let shared: KV | undefined;
      afterEach(async () => {
        const kv = shared;
        shared = undefined;
        await kv?.close();
      });
      const store = () => {
        shared ??= createKV(kvOptions(bucket));
        return new KeyvK8sKv({ kv: shared });
      };
      suites.keyvTestSuite(suiteApi(), Keyv, store);
      suites.keyvIteratorTests(suiteApi(), IterableKeyv, store);
    });

    describe('what the adapter promises', () => {
      it('makes no API call and reads no kubeconfig until first used', async () => {
        const counted = countingApi(getEnv().api);
        const store = opened.track(new KeyvK8sKv({ bucket: bucketName('lazy'), api: counted.api, kubeNamespace: getEnv().kubeNamespace }));
        const keyv = new Keyv({ store });
        expect(total(counted.counts)).toBe(0);
        await keyv.set('a', 1);
        expect(await keyv.get('a')).toBe(1);
        expect(total(counted.counts)).toBeGreaterThan(0);
      });

      it('stores Keyv\'s serialized value unchanged, under "namespace:key", and the entry expires by itself', async () => {
        const bucket = bucketName('raw');
        const keyv = new Keyv({ store: adapter(bucket) });
        await keyv.set('user:1', { name: 'Ada', tags: ['x'] }, 60_000);
        const kv = inspect(bucket);
        const raw = await kv.getText('keyv:user:1');
        expect(raw).toBeTypeOf('string');
        const parsed = JSON.parse(raw!) as { value: unknown; expires: number };
        expect(parsed.value).toEqual({ name: 'Ada', tags: ['x'] });
        expect(parsed.expires).toBeTypeOf('number');
        // What cache-manager's ttl() reads: Keyv's raw entry with `expires`.
        expect(await keyv.get('user:1', { raw: true })).toEqual(parsed);
        // The ttl reached core: the entry has its own expiry, close to Keyv's.
        const entry = await kv.getEntry('keyv:user:1');
        expect(entry?.text).toBe(true);
        expect(entry?.expiresAt).toBeInstanceOf(Date);
        expect(entry!.expiresAt!.getTime()).toBeGreaterThanOrEqual(parsed.expires);
        expect(entry!.expiresAt!.getTime() - parsed.expires).toBeLessThan(60_000);
        // Without a ttl, no expiry.
        await keyv.set('forever', 'x');
        expect((await kv.getEntry('keyv:forever'))?.expiresAt).toBeUndefined();
      });

      it('hides expired entries from get, has, hasMany and getMany, and delete() says false for them', async () => {
        const bucket = bucketName('expiry');
        const clock = manualClock();
        const kv = opened.track(createKV(kvOptions(bucket, { now: clock.now })));
        const store = new KeyvK8sKv({ kv });
        const keyv = new Keyv({ store });
        await keyv.set('short', 'a', 1_000);
        await keyv.set('long', 'b', 60_000);
        expect(await keyv.has('short')).toBe(true);
        clock.advance(1_001);
        // Keyv 5 hands has() to the store without looking at `expires`: the store must know.
        expect(await store.has('keyv:short')).toBe(false);
        expect(await keyv.has('short')).toBe(false);
        expect(await keyv.hasMany(['short', 'long', 'none'])).toEqual([false, true, false]);
        expect(await store.get('keyv:short')).toBeUndefined();
        expect(await store.getMany(['keyv:short', 'keyv:long'])).toEqual([undefined, expect.any(String)]);
        expect(await keyv.delete('short')).toBe(false);
        expect(await keyv.delete('long')).toBe(true);
        expect(await keyv.delete('long')).toBe(false);
      });

      it('treats a negative ttl as already expired, and ttl 0 as none', async () => {
        const bucket = bucketName('ttl-edges');
        const store = adapter(bucket);
        await store.set('k', 'v');
        expect(await store.set('k', 'w', -1)).toBe(true);
        expect(await store.has('k')).toBe(false);
        await store.set('z', 'v', 0);
        expect((await inspect(bucket).getEntry('z'))?.expiresAt).toBeUndefined();
      });

      it('does getMany, setMany, deleteMany and hasMany with one API call each (one patch per write)', async () => {
        const bucket = bucketName('batch');
        const counted = countingApi(getEnv().api);
        // With the read cache (the default), reads come from the watch and writes are one patch each.
        const store = opened.track(new KeyvK8sKv({ bucket, api: counted.api, kubeNamespace: getEnv().kubeNamespace }));
        const keyv = new Keyv({ store });
        await keyv.set('seed', 0); // creates the bucket
        expect(await keyv.get('seed')).toBe(0); // starts the watch
        counted.reset();
        expect(
          await keyv.setMany([
            { key: 'a', value: 1 },
            { key: 'b', value: 2, ttl: 60_000 },
            { key: 'c', value: 3 },
          ]),
        ).toEqual([true, true, true]);
        expect(counted.counts).toEqual({ jsonPatch: 1 });

        counted.reset();
        expect(await keyv.get(['a', 'b', 'x'])).toEqual([1, 2, undefined]);
        expect(await keyv.hasMany(['a', 'x', 'c'])).toEqual([true, false, true]);
        expect(counted.counts).toEqual({});

        counted.reset();
        expect(await keyv.delete(['a', 'b'])).toBe(true);
        expect(counted.counts).toEqual({ jsonPatch: 1 });
        // Keyv 5's deleteMany resolves to one boolean: true only if every key was deleted.
        expect(await keyv.deleteMany(['a', 'c'])).toBe(false);
        expect(await keyv.get('c')).toBeUndefined();
        expect(await store.deleteMany([])).toBe(true);

        // Without the cache, each batch read is one GET.
        const uncached = countingApi(getEnv().api);
        const direct = opened.track(new KeyvK8sKv({ bucket, api: uncached.api, kubeNamespace: getEnv().kubeNamespace, cache: false }));
        const keyv2 = new Keyv({ store: direct });
        expect(await keyv2.get(['seed', 'x'])).toEqual([0, undefined]);
        expect(uncached.counts).toEqual({ get: 1 });
        uncached.reset();
        expect(await keyv2.hasMany(['seed', 'x'])).toEqual([true, false]);
        expect(uncached.counts).toEqual({ get: 1 });
      });

      it('clear() deletes only its own namespace, in one patch', async () => {
        const bucket = bucketName('clear');
        const counted = countingApi(getEnv().api);
        const a = new Keyv({ store: opened.track(new KeyvK8sKv({ bucket, api: counted.api, kubeNamespace: getEnv().kubeNamespace })), namespace: 'a' });
        const b = new Keyv({ store: adapter(bucket), namespace: 'b' });
        const c = new Keyv({ store: adapter(bucket), namespace: 'a:b' });
        await a.setMany([
          { key: 'x', value: 1 },
          { key: 'y', value: 2 },
          { key: 'z', value: 3 },
        ]);
        await b.set('x', 'bx');
        await b.set('a:x', 'b-ax');
        await c.set('q', 'c');
        expect(await a.get('x')).toBe(1); // starts the watch
        counted.reset();
        await a.clear();
        expect(counted.counts).toEqual({ jsonPatch: 1 });
        expect(await a.get(['x', 'y', 'z'])).toEqual([undefined, undefined, undefined]);
        expect(await b.get('x')).toBe('bx');
        expect(await b.get('a:x')).toBe('b-ax');
        // Namespace "a:b" lives under "a:": clearing "a" took it too (documented: namespaces must not contain ":").
        expect(await c.get('q')).toBeUndefined();
        expect(await inspect(bucket).keys()).toEqual(['b:a:x', 'b:x']);
      });

      it('iterator() lists only its own namespace, keys without the prefix, values deserialized', async () => {
        const bucket = bucketName('iter');
        const a = enableIterator(new Keyv({ store: adapter(bucket), namespace: 'a' }));
        const b = enableIterator(new Keyv({ store: adapter(bucket), namespace: 'b' }));
        await a.set('one', 1);
        await a.set('two:with:colons', { n: 2 });
        await b.set('one', 'b1');
        const seen: Array<[string, unknown]> = [];
        for await (const [key, value] of a.iterator!(undefined)) seen.push([key, value]);
        expect(seen.sort()).toEqual([
          ['one', 1],
          ['two:with:colons', { n: 2 }],
        ]);
        const seenB: Array<[string, unknown]> = [];
        for await (const entry of b.iterator!(undefined)) seenB.push(entry);
        expect(seenB).toEqual([['one', 'b1']]);
      });

      it('without a Keyv namespace, keys are stored as given and clear() empties the bucket', async () => {
        const bucket = bucketName('nons');
        const plain = new Keyv({ store: adapter(bucket), namespace: '' });
        const named = new Keyv({ store: adapter(bucket), namespace: 'n' });
        await plain.set('k', 'v');
        await named.set('k', 'nv');
        expect(await inspect(bucket).keys()).toEqual(['k', 'n:k']);
        await plain.clear();
        expect(await inspect(bucket).keys()).toEqual([]);
      });

      it('new Keyv({ store }) accepts the adapter (Keyv 5 reads opts.url), and enableIterator() adds keyv.iterator', async () => {
        const store = adapter(bucketName('opts'));
        expect(store.opts).toMatchObject({ dialect: 'k8s-kv', url: 'k8s-kv:' });
        const keyv = new Keyv({ store });
        expect(keyv.iterator).toBeUndefined();
        expect(enableIterator(keyv)).toBe(keyv);
        expect(keyv.iterator).toBeTypeOf('function');
        expect(() => enableIterator(new Keyv())).not.toThrow(); // a Map store: Keyv wires its iterator itself
        expect(() => enableIterator(new Keyv({ store: { get() {}, set() {}, delete() {}, clear() {}, opts: {} } }))).toThrow(TypeError);
      });

      it('createKeyv() gives a Keyv 5 instance with namespace "keyv", ttl and iterator()', async () => {
        const bucket = bucketName('create');
        const keyv = createKeyv({ bucket, api: getEnv().api, kubeNamespace: getEnv().kubeNamespace, ttl: 60_000 });
        opened.track(keyv);
        expect(keyv).toBeInstanceOf(Keyv);
        expect(keyv.namespace).toBe('keyv');
        expect((keyv.store as KeyvK8sKv).contract).toBe('keyv5');
        await keyv.set('a', 'A');
        const raw = JSON.parse((await inspect(bucket).getText('keyv:a'))!) as { expires?: number };
        expect(raw.expires).toBeTypeOf('number');
        const entries: unknown[] = [];
        for await (const entry of keyv.iterator!(undefined)) entries.push(entry);
        expect(entries).toEqual([['a', 'A']]);
      });

      it("rejects values that are not strings (Keyv's serializer turned off) with InvalidValueError", async () => {
        const store = adapter(bucketName('values'));
        await expect(store.set('k', { value: 1 })).rejects.toBeInstanceOf(InvalidValueError);
        await expect(store.set('k', new Uint8Array([1]))).rejects.toBeInstanceOf(InvalidValueError);
        await expect(
          store.setMany([
            { key: 'a', value: 'ok' },
            { key: 'b', value: 2 },
          ]),
        ).rejects.toBeInstanceOf(InvalidValueError);
        expect(await store.get('a')).toBeUndefined(); // nothing of the batch was written
        const keyv = new Keyv({ store, serialize: undefined, deserialize: undefined });
        const errors: unknown[] = [];
        keyv.on('error', (error) => errors.push(error));
        expect(await keyv.set('k', 'v')).toBe(false);
        expect(errors).toHaveLength(1);
        expect(errors[0]).toBeInstanceOf(InvalidValueError);
      });

      it('reports each failure once: the adapter rejects, Keyv 5 emits (or throws with throwOnErrors)', async () => {
        const store = opened.track(
          new KeyvK8sKv({ bucket: bucketName('forbidden'), api: getEnv().forbiddenApi, kubeNamespace: getEnv().kubeNamespace, cache: false }),
        );
        await expect(store.get('k')).rejects.toBeInstanceOf(ForbiddenError);
        await expect(store.set('k', 'v')).rejects.toMatchObject({ code: 'KV_FORBIDDEN' });

        const keyv = new Keyv({ store });
        const errors: unknown[] = [];
        keyv.on('error', (error) => errors.push(error));
        expect(await keyv.set('k', 'v')).toBe(false);
        expect(errors).toHaveLength(1);
        expect(errors[0]).toBeInstanceOf(ForbiddenError);
        // Keyv 5's get() swallows store errors unless throwOnErrors is on.
        expect(await keyv.get('k')).toBeUndefined();
        await expect(keyv.getMany(['k'])).rejects.toBeInstanceOf(ForbiddenError);

        const strict = new Keyv({ store, throwOnErrors: true });
        await expect(strict.get('k')).rejects.toBeInstanceOf(ForbiddenError);
        await expect(strict.set('k', 'v')).rejects.toBeInstanceOf(ForbiddenError);
      });

      it('turns errors of background work into error events, and keeps working without list/watch rights', async () => {
        const bucket = bucketName('nowatch');
        const store = opened.track(new KeyvK8sKv({ bucket, api: getEnv().noWatchApi, kubeNamespace: getEnv().kubeNamespace }));
        const keyv = new Keyv({ store });
        const errors: unknown[] = [];
        keyv.on('error', (error) => errors.push(error));
        await keyv.set('k', 'v');
        expect(await keyv.get('k')).toBe('v');
        expect(errors.length).toBeGreaterThanOrEqual(1);
        expect(errors[0]).toBeInstanceOf(ForbiddenError);
        expect((errors[0] as ForbiddenError).verb).toMatch(/^(list|watch)$/);

        // With no listener at all, nothing throws.
        const lonely = opened.track(new KeyvK8sKv({ bucket, api: getEnv().noWatchApi, kubeNamespace: getEnv().kubeNamespace }));
        expect(await lonely.get('keyv:k')).toBe(JSON.stringify({ value: 'v' }));

        // A once-listener hears it once and is gone.
        const direct = opened.track(new KeyvK8sKv({ bucket, api: getEnv().noWatchApi, kubeNamespace: getEnv().kubeNamespace }));
        const heard: unknown[] = [];
        direct.once('error', (error: unknown) => heard.push(error));
        expect(await direct.has('keyv:k')).toBe(true);
        expect(heard).toHaveLength(1);
        expect(heard[0]).toBeInstanceOf(ForbiddenError);
        expect(direct.listenerCount('error')).toBe(0);
      });

      it('disconnect() closes the k8s-kv store it created, not one passed in as kv', async () => {
        const bucket = bucketName('disconnect');
        const own = new KeyvK8sKv(adapterOptions(bucket));
        const keyv = new Keyv({ store: own });
        await keyv.set('k', 'v');
        await keyv.disconnect();
        await own.disconnect(); // idempotent
        await expect(own.get('k')).rejects.toBeInstanceOf(ClosedError);

        const kv = opened.track(createKV(kvOptions(bucket)));
        const borrowed = new KeyvK8sKv({ kv });
        await borrowed.disconnect();
        expect(await kv.getText('keyv:k')).toBe(JSON.stringify({ value: 'v' }));
        expect(() => new KeyvK8sKv({ kv, bucket })).toThrow(/either "kv" or/);
        expect(() => new KeyvK8sKv({})).toThrow(/needs a "bucket"/);
      });
    });
  });
}

/** Part 3: the adapter driven by Keyv 6 (its own contract: capabilities, absolute expires, arrays). */
export function describeKeyv6Contract(label: string, Keyv6: Keyv6Class, getEnv: () => KeyvAdapterTestEnv): void {
  const opened = tracker();
  afterAll(opened.closeAll);
  // This package resolves Keyv 5 (its dev dependency), so adapters for Keyv 6 say so.
  const adapter = (bucket: string, extra: Partial<KeyvK8sKvOptions> = {}, api = getEnv().api): KeyvK8sKv =>
    opened.track(new KeyvK8sKv({ bucket, api, kubeNamespace: getEnv().kubeNamespace, contract: 'keyv6', ...extra }));
  const inspect = (bucket: string): KV => opened.track(createKV({ bucket, api: getEnv().api, namespace: getEnv().kubeNamespace, cache: false }));

  describe(`Keyv 6 over the adapter (${label})`, () => {
    afterEach(opened.closeAll);

    it('an adapter built for Keyv 6 is used directly (capabilities.expires); reading capabilities changes nothing', () => {
      const store = adapter(bucketName('v6-caps'));
      expect(store.contract).toBe('keyv6');
      const keyv = new Keyv6({ store });
      expect(keyv.store).toBe(store);
      expect(store.capabilities).toMatchObject({ compatible: true, expires: true, methods: { getMany: { exists: true }, iterator: { exists: true } } });
      expect(store.contract).toBe('keyv6');

      // Built for Keyv 5 (the default here): Keyv 6 reading capabilities leaves it a Keyv 5 adapter.
      const five = adapter(bucketName('v6-caps5'), { contract: 'keyv5' });
      expect(five.capabilities.expires).toBe(false);
      expect(five.contract).toBe('keyv5');
      expect(new KeyvK8sKv({ bucket: 'x', api: getEnv().api, kubeNamespace: getEnv().kubeNamespace }).contract).toBe('keyv5');
    });

    it('an adapter built for Keyv 6 but called by Keyv 5 (a relative ttl) fails with a message that says what to do', async () => {
      const keyv5 = new Keyv({ store: adapter(bucketName('v6-mismatch')) });
      keyv5.on('error', () => {});
      const store = keyv5.store as KeyvK8sKv;
      await expect(store.set('k', 'v', 60_000)).rejects.toThrow(/follows Keyv 6's contract .* build the adapter with \{ contract: "keyv5" \}/);
    });

    it('round-trips values; the adapter prefixes keys with the namespace', async () => {
      const bucket = bucketName('v6-basic');
      const keyv = new Keyv6({ store: adapter(bucket), namespace: 'app' });
      expect(await keyv.set('user:1', { name: 'Ada' })).toBe(true);
      expect(await keyv.get('user:1')).toEqual({ name: 'Ada' });
      expect(await keyv.has('user:1')).toBe(true);
      expect(await keyv.has('nope')).toBe(false);
      const raw = await inspect(bucket).getText('app:user:1');
      expect(JSON.parse(raw!)).toMatchObject({ value: { name: 'Ada' } });
      expect(await keyv.delete('user:1')).toBe(true);
      expect(await keyv.delete('user:1')).toBe(false);

      const plain = new Keyv6({ store: adapter(bucket) });
      await plain.set('bare', 1);
      expect(await inspect(bucket).keys()).toEqual(['bare']);
    });

    it('passes the absolute expiry to the entry, and an expiry in the past deletes', async () => {
      const bucket = bucketName('v6-ttl');
      const store = adapter(bucket);
      const keyv = new Keyv6({ store, namespace: 'ns' });
      const before = Date.now();
      await keyv.set('k', 'v', 60_000);
      const after = Date.now();
      const entry = await inspect(bucket).getEntry('ns:k');
      expect(entry?.expiresAt).toBeInstanceOf(Date);
      expect(entry!.expiresAt!.getTime()).toBeGreaterThanOrEqual(before + 60_000);
      expect(entry!.expiresAt!.getTime()).toBeLessThanOrEqual(after + 60_000 + 1);
      expect(await store.set('k', 'w', Date.now() - 1)).toBe(true);
      expect(await keyv.get('k')).toBeUndefined();
      expect(
        await store.setMany([
          { key: 'a', value: 'x', expires: Date.now() + 60_000 },
          { key: 'b', value: 'y', expires: Date.now() - 1 },
        ]),
      ).toEqual([true, true]);
      expect(await store.hasMany(['a', 'b'])).toEqual([true, false]);
    });

    it('batch calls answer with arrays', async () => {
      const keyv = new Keyv6({ store: adapter(bucketName('v6-batch')), namespace: 'ns' });
      expect(
        await keyv.setMany([
          { key: 'a', value: 1 },
          { key: 'b', value: 2 },
        ]),
      ).toEqual([true, true]);
      expect(await keyv.getMany(['a', 'b', 'c'])).toEqual([1, 2, undefined]);
      expect(await keyv.hasMany(['a', 'c'])).toEqual([true, false]);
      expect(await keyv.deleteMany(['a', 'c'])).toEqual([true, false]);
      expect(await keyv.store.deleteMany(['b', 'b'])).toEqual([true, false]);
    });

    it('clear() and iterator() stay within the namespace', async () => {
      const bucket = bucketName('v6-ns');
      const a = new Keyv6({ store: adapter(bucket), namespace: 'a' });
      const b = new Keyv6({ store: adapter(bucket), namespace: 'b' });
      await a.set('1', 'a1');
      await a.set('2', 'a2');
      await b.set('1', 'b1');
      const seen: unknown[] = [];
      for await (const entry of a.iterator()) seen.push(entry);
      expect(seen).toEqual([
        ['1', 'a1'],
        ['2', 'a2'],
      ]);
      await a.clear();
      expect(await a.get('1')).toBeUndefined();
      expect(await b.get('1')).toBe('b1');
    });

    it('errors are reported once: to an error listener, or as a rejection when there is none; never a crash', async () => {
      const bucket = bucketName('v6-errors');
      const listened = new Keyv6({ store: adapter(bucket, { cache: false }, getEnv().forbiddenApi) });
      const errors: unknown[] = [];
      listened.on('error', (error: unknown) => errors.push(error));
      expect(await listened.get('k')).toBeUndefined();
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(ForbiddenError);
      expect(await listened.set('k', 'v')).toBe(false);
      expect(errors).toHaveLength(2);

      // No listener: Keyv 6 throws from emit("error"), so the call rejects.
      const silent = new Keyv6({ store: adapter(bucket, { cache: false }, getEnv().forbiddenApi) });
      await expect(silent.get('k')).rejects.toBeInstanceOf(ForbiddenError);

      // Errors of background work (no list/watch rights) with no listener anywhere:
      // dropped, the read falls back to GET.
      const noWatch = new Keyv6({ store: adapter(bucket, {}, getEnv().noWatchApi) });
      expect(await noWatch.set('k', 'v')).toBe(true);
      expect(await noWatch.get('k')).toBe('v');
    });

    it('disconnect() closes the store', async () => {
      const store = new KeyvK8sKv({ bucket: bucketName('v6-close'), api: getEnv().api, kubeNamespace: getEnv().kubeNamespace });
      const keyv = new Keyv6({ store });
      await keyv.set('k', 'v');
      await keyv.disconnect();
      await expect(store.get('k')).rejects.toBeInstanceOf(ClosedError);
    });
  });
}
