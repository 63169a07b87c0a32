/**
 * The behaviour of @k8s-kv/core, written once and run twice: against the
 * in-memory port (packages/core/test/kv.test.ts) and against the real API
 * server (test/integration/core.test.ts).
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  BucketFullError,
  ClosedError,
  CorruptEntryError,
  createKV,
  decodeEnvelopeHeader,
  encodeEnvelope,
  ForbiddenError,
  ForeignObjectError,
  InvalidBucketNameError,
  InvalidKeyError,
  InvalidValueError,
  NamespaceNotFoundError,
  encodeKey,
  shardIndex,
  shardName,
  UnsupportedFormatError,
  ValueTooLargeError,
  type JsonPatchOp,
  type KubeObject,
  type KubeApi,
  type KV,
  type KVChangeEvent,
  type KVOptions,
} from '@k8s-kv/core';
import { countingApi } from '@k8s-kv/core/testing';
import { bucketName, eventually } from '../../../../test/support/test-helpers.ts';

/** The objects of a bucket (its own, its shards or parts), by name, as one LIST by the bucket's label returns them. */
export async function objectsOfBucket(env: KvTestEnv, bucket: string): Promise<Map<string, KubeObject>> {
  const list = await env.api.list('ConfigMap', env.namespace, { labelSelector: `k8s-kv.io/bucket=${bucket}` });
  return new Map(list.items.map((o) => [o.metadata.name, o]));
}

/** What a run of the suite needs from its environment. */
export interface KvTestEnv {
  /** A port with full rights. */
  api: KubeApi;
  /** A namespace that exists and is empty. */
  namespace: string;
  /** A namespace that does not exist. */
  missingNamespace: string;
  /** A port whose identity has no rights on configmaps in `namespace`. */
  forbiddenApi: KubeApi;
}

const writes = (counts: Partial<Record<string, number>>): number =>
  (counts.mergePatch ?? 0) + (counts.strategicMergePatch ?? 0) + (counts.jsonPatch ?? 0) + (counts.create ?? 0);

const UNUSUAL_KEYS = [
  '',
  '.',
  '..',
  '...',
  '.hidden',
  'a.b',
  '_',
  '__',
  'a_b',
  'user:42',
  'a/b/c',
  '/leading',
  'trailing/',
  'with space',
  'dollar$',
  'meta$',
  'q?x=1',
  'é',
  '日本語',
  '🙂 emoji',
  'tab\there',
  'new\nline',
  '\u0000nul',
  'x'.repeat(253),
  'y'.repeat(300),
  '日'.repeat(120),
  'a:b:'.repeat(80),
];

/**
 * Registers the suite. `getEnv` is called inside tests (after the caller's beforeAll).
 * `defaults` are options of every store the suite opens (e.g. `{ shards: 4 }`: the same
 * behaviour from a sharded bucket).
 */
export function describeKvBehaviour(name: string, getEnv: () => KvTestEnv, defaults: Partial<KVOptions> = {}): void {
  describe(`core behaviour (${name})`, () => {
    const shards = defaults.shards ?? 1;
    const sharded = shards > 1;
    /** The object that holds `key`: the bucket's own, or its shard. */
    const holderOf = (bucket: string, key: string): string => (sharded ? shardName(bucket, shardIndex(encodeKey(key).dataKey, shards)) : bucket);
    /** How many objects hold these keys (each takes its own patch). */
    const holders = (bucket: string, keys: string[]): number => new Set(keys.map((k) => holderOf(bucket, k))).size;
    /** `n` keys `<prefix><i>` that one object holds. */
    const keysOfOneObject = (prefix: string, n: number): string[] => {
      const keys: string[] = [];
      for (let i = 0; keys.length < n; i++) if (holderOf('b', `${prefix}${i}`) === holderOf('b', `${prefix}0`)) keys.push(`${prefix}${i}`);
      return keys;
    };
    const open: KV[] = [];
    const make = (options: Partial<KVOptions> = {}): KV => {
      const env = getEnv();
      const kv = createKV({ bucket: bucketName(), namespace: env.namespace, api: env.api, ...defaults, ...options });
      open.push(kv);
      return kv;
    };
    // Close every store a test opened so watches end and the process can exit.
    afterEach(async () => {
      await Promise.all(open.splice(0).map((kv) => kv.close()));
    });

    it('puts, gets, lists, and deletes', async () => {
      const kv = make();
      expect(await kv.get('missing')).toBeUndefined();
      expect(await kv.keys()).toEqual([]);
      await kv.put('config/a', 'one');
      await kv.put('config/b', new Uint8Array([0, 1, 2, 255]));
      await kv.put('other', 'x');
      expect(await kv.getText('config/a')).toBe('one');
      expect(await kv.get('config/b')).toEqual(new Uint8Array([0, 1, 2, 255]));
      expect(await kv.has('config/a')).toBe(true);
      expect(await kv.has('nope')).toBe(false);
      expect(await kv.keys('config/')).toEqual(['config/a', 'config/b']);
      const listed = await kv.list('config/');
      expect([...listed.keys()]).toEqual(['config/a', 'config/b']);
      expect(new TextDecoder().decode(listed.get('config/a'))).toBe('one');
      expect(await kv.delete('config/a')).toBe(true);
      expect(await kv.delete('config/a')).toBe(false);
      expect(await kv.keys()).toEqual(['config/b', 'other']);
      const entry = await kv.getEntry('other');
      expect(entry?.text).toBe(true);
      expect(entry?.modifiedAt).toBeInstanceOf(Date);
      expect((await kv.getEntry('config/b'))?.text).toBe(false);
    });

    it('keeps any string as a key, and labels the ConfigMap so kubectl finds it', async () => {
      const kv = make({ app: 'keys-app' });
      await kv.putMany(UNUSUAL_KEYS.map((key, i) => ({ key, value: `v${i}` })));
      expect(await kv.keys()).toEqual([...UNUSUAL_KEYS].sort());
      for (const [i, key] of UNUSUAL_KEYS.entries()) expect(await kv.getText(key)).toBe(`v${i}`);
      for (const [key, dataKey] of [
        ['user:42', 'user_3A42'],
        ['a.b', 'a.b'],
      ] as const) {
        const object = await getEnv().api.get({ kind: 'ConfigMap', namespace: kv.namespace, name: holderOf(kv.bucket, key) });
        expect(object.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'k8s-kv', 'k8s-kv.io/app': 'keys-app', 'k8s-kv.io/bucket': kv.bucket });
        expect(object.metadata.annotations?.['k8s-kv.io/format']).toBe(sharded ? '2' : '1');
        expect(Object.keys(object.binaryData ?? {})).toContain(dataKey);
        expect(object.data).toBeUndefined();
      }
      const found = await getEnv().api.list('ConfigMap', kv.namespace, { labelSelector: 'app.kubernetes.io/managed-by=k8s-kv,k8s-kv.io/app=keys-app' });
      expect(found.items.map((o) => o.metadata.name)).toContain(kv.bucket);
    });

    it('keeps no field-ownership records (managedFields): every write clears them', async () => {
      const kv = make({ cache: false });
      // Keys of one object (in a sharded bucket, one shard: a shard is created by its first write).
      const [a, b, counter] = keysOfOneObject('mf', 3) as [string, string, string];
      const ref = { kind: 'ConfigMap' as const, namespace: kv.namespace, name: holderOf(kv.bucket, a) };
      const managedFields = async (): Promise<unknown> => (await getEnv().api.get(ref)).metadata.managedFields;
      await kv.put(a, '1'); // the create (the server records its fields)
      await kv.update(counter, () => '1');
      expect(await managedFields()).toBeUndefined();
      await kv.put(b, '2');
      await kv.update(counter, () => '2');
      await kv.delete(a);
      await kv.deleteMany([b, 'nope']);
      expect(await managedFields()).toBeUndefined();
      expect(await kv.keys()).toEqual([counter]);
    });

    it('stores binary and large compressible values', async () => {
      const kv = make();
      const random = new Uint8Array(randomBytes(100_000));
      const text = 'the same line again\n'.repeat(20_000); // 400 kB, compresses well
      await kv.put('random', random);
      await kv.put('text', text);
      expect(await kv.get('random')).toEqual(random);
      expect(await kv.getText('text')).toBe(text);
      const entry = await kv.getEntry('text');
      expect(entry!.size).toBeLessThan(20_000);
    });

    it('after the put that creates the bucket, each put is one patch and nothing else', async () => {
      const env = getEnv();
      const counted = countingApi(env.api);
      const kv = make({ api: counted.api });
      const [first, second, third] = keysOfOneObject('w', 3) as [string, string, string];
      await kv.put(first, '1');
      counted.reset();
      await kv.put(second, '2');
      await kv.put(third, '3');
      expect(counted.counts).toEqual({ jsonPatch: 2 });
    });

    it('batches: getMany, putMany and deleteMany each in one API call', async () => {
      const env = getEnv();
      const counted = countingApi(env.api);
      const kv = make({ api: counted.api, cache: false });
      await kv.put('seed', 's');
      counted.reset();
      // In a sharded bucket: one patch per shard involved (and a GET of each shard written the first time).
      await kv.putMany([['a', '1'], { key: 'b', value: '2' }, ['c', '3']]);
      expect(writes(counted.counts)).toBe(holders(kv.bucket, ['a', 'b', 'c']));
      counted.reset();
      expect((await kv.getMany(['a', 'zz', 'c'])).map((v) => v && new TextDecoder().decode(v))).toEqual(['1', undefined, '3']);
      expect((counted.counts.get ?? 0) + (counted.counts.list ?? 0)).toBe(1);
      counted.reset();
      expect(await kv.deleteMany(['a', 'b'])).toEqual([true, true]);
      expect(writes(counted.counts)).toBe(holders(kv.bucket, ['a', 'b']));
      expect(await kv.deleteMany(['c', 'missing', 'c'])).toEqual([true, false, false]);
      expect(await kv.keys()).toEqual(['seed']);
    });

    it('clears a prefix in one patch and leaves the rest', async () => {
      const kv = make();
      await kv.putMany([
        ['ns1:a', '1'],
        ['ns1:b', '2'],
        ['ns2:a', '3'],
      ]);
      expect(await kv.clear('ns1:')).toBe(2);
      expect(await kv.keys()).toEqual(['ns2:a']);
      expect(await kv.clear('ns1:')).toBe(0);
    });

    it('hides expired entries from get, has, list and keys', async () => {
      let now = Date.now();
      const kv = make({ now: () => now, cache: false });
      await kv.put('short', 'x', { ttl: 1000 });
      await kv.put('long', 'y', { ttl: 60_000 });
      await kv.put('forever', 'z');
      expect(await kv.keys()).toEqual(['forever', 'long', 'short']);
      expect((await kv.getEntry('short'))?.expiresAt?.getTime()).toBe(now + 1000);
      now += 1001;
      expect(await kv.get('short')).toBeUndefined();
      expect(await kv.has('short')).toBe(false);
      expect(await kv.keys()).toEqual(['forever', 'long']);
      expect([...(await kv.list()).keys()]).toEqual(['forever', 'long']);
      expect(await kv.getMany(['short', 'long'])).toEqual([undefined, expect.any(Uint8Array)]);
      expect(await kv.stats()).toMatchObject({ keys: 2, expired: 1 });
      expect(await kv.delete('short')).toBe(false);
      expect(await kv.stats()).toMatchObject({ keys: 2, expired: 0 });
    });

    it('marks the values update writes with a write id (docs/FORMAT.md), and no others', async () => {
      const kv = make({ cache: false });
      await kv.put('plain', 'p');
      await kv.update('counted', () => '1');
      await kv.update('counted', () => '2');
      const header = async (key: string) => {
        const object = await getEnv().api.get({ kind: 'ConfigMap', namespace: kv.namespace, name: holderOf(kv.bucket, key) });
        return decodeEnvelopeHeader(new Uint8Array(Buffer.from(object.binaryData![key]!, 'base64')));
      };
      expect((await header('plain')).writeId).toBeUndefined();
      expect((await header('counted')).writeId).toHaveLength(8);
      expect(await kv.getText('counted')).toBe('2');
    });

    it('update is an atomic read-modify-write: increments, keeps, deletes', async () => {
      const kv = make();
      const inc = (v: Uint8Array | undefined) => String(Number(v ? new TextDecoder().decode(v) : '0') + 1);
      for (let i = 0; i < 3; i++) await kv.update('counter', inc);
      expect(await kv.getText('counter')).toBe('3');
      expect(new TextDecoder().decode(await kv.update('counter', () => undefined))).toBe('3');
      expect(await kv.update('counter', () => null)).toBeUndefined();
      expect(await kv.has('counter')).toBe(false);
      // Concurrent updates from several stores (as several pods would) lose nothing.
      const env = getEnv();
      const bucket = bucketName();
      const stores = Array.from({ length: 4 }, () => make({ bucket, namespace: env.namespace }));
      await Promise.all(
        stores.map((s) =>
          (async () => {
            for (let i = 0; i < 15; i++) await s.update('n', inc);
          })(),
        ),
      );
      expect(await stores[0]!.getText('n')).toBe('60');
    });

    it('creates the ConfigMap race-free when many writers start at once', async () => {
      const env = getEnv();
      const bucket = bucketName();
      const stores = Array.from({ length: 8 }, () => make({ bucket, namespace: env.namespace, cache: false }));
      await Promise.all(stores.map((s, i) => s.put(`k${i}`, `v${i}`)));
      expect(await stores[0]!.keys()).toEqual(stores.map((_, i) => `k${i}`).sort());
    });

    it('coalesces concurrent puts into few patches; each caller gets its own result', async () => {
      const env = getEnv();
      const counted = countingApi(env.api);
      // maxBytes of one object: a bucket that stays one object (it would split past 12 KiB), to reach its 1 MiB limit.
      const kv = make({ api: counted.api, maxBytes: 1_048_576 });
      await kv.put('seed', 's');
      counted.reset();
      await Promise.all(Array.from({ length: 64 }, (_, i) => kv.put(`k${i}`, `v${i}`)));
      // Per object: the first patch, and one for all that queued while it was in flight (+ creating each shard).
      expect(writes(counted.counts)).toBeLessThanOrEqual(sharded ? 3 * shards : 2);
      expect((await kv.keys()).length).toBe(65);
      // An oversize value fails only its own caller.
      const results = await Promise.allSettled([kv.put('ok1', 'a'), kv.put('huge', new Uint8Array(randomBytes(1_100_000))), kv.put('ok2', 'b')]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(ValueTooLargeError);
      // Two that do not fit together: each caller gets its own outcome.
      const big = () => new Uint8Array(randomBytes(600_000));
      const [big1, big2] = keysOfOneObject('big', 2) as [string, string];
      const pair = await Promise.allSettled([kv.put(big1, big()), kv.put(big2, big())]);
      expect(pair.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      expect(pair.map((r) => r.status === 'rejected' && r.reason).find(Boolean)).toBeInstanceOf(BucketFullError);
    });

    it('rejects a value over the limit before any API call', async () => {
      const counted = countingApi(getEnv().api);
      const kv = make({ api: counted.api });
      await expect(kv.put('big', new Uint8Array(randomBytes(1_048_577)))).rejects.toMatchObject({ code: 'KV_VALUE_TOO_LARGE', key: 'big', limit: 1_048_576 });
      expect(writes(counted.counts) + (counted.counts.get ?? 0)).toBe(0);
    });

    it('reports a full bucket with sizes and writes nothing', async () => {
      const kv = make({ maxBytes: 1_048_576 }); // one object that does not split: its 1 MiB limit
      // Keys that one object holds (in a sharded bucket: one shard fills up).
      const [p0, p1, p2, p3, more, small, large] = keysOfOneObject('part', 7) as [string, string, string, string, string, string, string];
      await kv.putMany([p0, p1, p2, p3].map((key) => ({ key, value: new Uint8Array(randomBytes(240_000)) })));
      const error = await kv.put(more, new Uint8Array(randomBytes(200_000))).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BucketFullError);
      const full = error as BucketFullError;
      expect(full.code).toBe('KV_BUCKET_FULL');
      expect(full.currentBytes).toBeGreaterThan(960_000);
      expect(full.attemptedBytes).toBeGreaterThan(1_048_576);
      expect(full.message).not.toMatch(/[A-Za-z0-9+/]{40}/); // no value bytes in the message
      if (sharded) expect(full.shard).toMatchObject({ count: shards, name: holderOf(kv.bucket, more) });
      expect(await kv.has(more)).toBe(false);
      expect(await kv.keys()).toEqual([p0, p1, p2, p3].sort());
      // A batch over the limit is all-or-nothing (in a sharded bucket: within the shard).
      await expect(
        kv.putMany([
          [small, 'x'],
          [large, new Uint8Array(randomBytes(200_000))],
        ]),
      ).rejects.toBeInstanceOf(BucketFullError);
      expect(await kv.has(small)).toBe(false);
    });

    it('makes room by removing expired entries when the bucket is full', async () => {
      let now = Date.now();
      const kv = make({ now: () => now, cache: false, maxBytes: 1_048_576 });
      await kv.putMany([0, 1, 2, 3].map((i) => ({ key: `old${i}`, value: new Uint8Array(randomBytes(240_000)), ttl: 1000 })));
      now += 2000;
      await kv.put('fresh', new Uint8Array(randomBytes(300_000)));
      expect(await kv.keys()).toEqual(['fresh']);
    });

    it('refuses to touch a ConfigMap it did not create', async () => {
      const env = getEnv();
      const bucket = bucketName('foreign');
      const foreign = await env.api.create('ConfigMap', env.namespace, { metadata: { name: bucket }, data: { setting: 'keep me' } });
      const kv = make({ bucket });
      await expect(kv.put('x', 'y')).rejects.toBeInstanceOf(ForeignObjectError);
      await expect(kv.delete('setting')).rejects.toBeInstanceOf(ForeignObjectError);
      await expect(kv.update('x', () => 'y')).rejects.toBeInstanceOf(ForeignObjectError);
      await expect(kv.get('x')).rejects.toBeInstanceOf(ForeignObjectError);
      await expect(kv.teardown()).rejects.toBeInstanceOf(ForeignObjectError);
      const after = await env.api.get({ kind: 'ConfigMap', namespace: env.namespace, name: bucket });
      expect(after.data).toEqual({ setting: 'keep me' });
      expect(after.binaryData).toBeUndefined();
      expect(after.metadata.resourceVersion).toBe(foreign.metadata.resourceVersion);
      // Another app's bucket of the same name is refused too.
      const mine = make({ app: 'first-app' });
      await mine.put('a', 'b');
      const other = make({ bucket: mine.bucket, app: 'second-app' });
      await expect(other.put('a', 'c')).rejects.toMatchObject({ code: 'KV_FOREIGN_OBJECT', ownerApp: 'first-app' });
      expect(await mine.getText('a')).toBe('b');
    });

    it('stops writing to an object that stopped being this bucket after the store wrote to it: the write fails at the server and changes nothing', async () => {
      const env = getEnv();
      const tampering: Array<{ name: string; ops: JsonPatchOp[]; error: new (...args: never[]) => Error }> = [
        { name: 'managed-by label removed', ops: [{ op: 'remove', path: '/metadata/labels/app.kubernetes.io~1managed-by' }], error: ForeignObjectError },
        { name: 'another app', ops: [{ op: 'replace', path: '/metadata/labels/k8s-kv.io~1app', value: 'someone-else' }], error: ForeignObjectError },
        {
          name: 'a format this version does not know',
          ops: [{ op: 'replace', path: '/metadata/annotations/k8s-kv.io~1format', value: '99' }],
          error: UnsupportedFormatError,
        },
      ];
      for (const { name, ops, error } of tampering) {
        for (const cache of [false, true]) {
          const kv = make({ cache });
          await kv.putMany([
            ['a', '1'],
            ['b', '2'],
          ]);
          await kv.update('c', () => '3');
          expect(await kv.getText('a')).toBe('1');
          const ref = { kind: 'ConfigMap' as const, namespace: env.namespace, name: holderOf(kv.bucket, 'a') };
          const tampered = await env.api.jsonPatch(ref, ops);
          for (const write of [
            () => kv.put('a', 'x'),
            () =>
              kv.putMany([
                ['a', 'x'],
                ['d', 'y'],
              ]),
            () => kv.delete('a'),
            () => kv.update('a', () => 'x'),
          ]) {
            const failure = await write().catch((e: unknown) => e);
            expect(failure, `${name}, cache ${cache}`).toBeInstanceOf(error);
          }
          // A clear reports the object as not this bucket's, or (a shard no longer labelled as the
          // bucket's is not among its objects) leaves it out; either way it is not changed.
          const cleared = await kv.clear().catch((e: unknown) => e);
          if (cleared instanceof Error) expect(cleared, `${name}, cache ${cache}`).toBeInstanceOf(error);
          const after = await env.api.get(ref);
          expect(after.metadata.resourceVersion, `${name}, cache ${cache}`).toBe(tampered.metadata.resourceVersion);
        }
      }
    });

    it('refuses a bucket that declares a storage format it does not know, and changes nothing', async () => {
      const env = getEnv();
      const bucket = bucketName('format');
      const labels = { 'app.kubernetes.io/managed-by': 'k8s-kv', 'k8s-kv.io/app': 'default', 'k8s-kv.io/bucket': bucket };
      const entry = encodeEnvelope({ value: new TextEncoder().encode('v'), text: true, modifiedAt: 0 });
      const later = await env.api.create('ConfigMap', env.namespace, {
        metadata: { name: bucket, labels, annotations: { 'k8s-kv.io/format': '99' } },
        binaryData: { k: Buffer.from(entry).toString('base64') },
      });
      for (const cache of [false, true]) {
        const kv = make({ bucket, cache });
        for (const call of [
          () => kv.get('k'),
          () => kv.keys(),
          () => kv.put('x', 'y'),
          () => kv.delete('k'),
          () => kv.update('k', () => 'z'),
          () => kv.teardown(),
        ]) {
          const error = await call().catch((e: unknown) => e);
          expect(error).toBeInstanceOf(UnsupportedFormatError);
          expect(error).toMatchObject({ code: 'KV_UNSUPPORTED_FORMAT', format: '99' });
          expect((error as Error).message).toMatch(/upgrade @k8s-kv\/core/);
        }
      }
      const after = await env.api.get({ kind: 'ConfigMap', namespace: env.namespace, name: bucket });
      expect(after.metadata.resourceVersion).toBe(later.metadata.resourceVersion);
    });

    it('isolates a corrupt entry: only that key fails, list skips and reports it', async () => {
      const env = getEnv();
      const reported: CorruptEntryError[] = [];
      const kv = make({ onCorruptEntry: (e) => reported.push(e), cache: false });
      await kv.putMany([
        ['good', 'fine'],
        ['bad', 'soon broken'],
        ['also-good', 'ok'],
      ]);
      await env.api.mergePatch(
        { kind: 'ConfigMap', namespace: env.namespace, name: holderOf(kv.bucket, 'bad') },
        {
          binaryData: { bad: Buffer.from('hand-edited garbage').toString('base64') },
        },
      );
      await env.api.mergePatch(
        { kind: 'ConfigMap', namespace: env.namespace, name: holderOf(kv.bucket, 'good') },
        {
          binaryData: { not_a_key: Buffer.from('x').toString('base64') },
        },
      );
      await expect(kv.get('bad')).rejects.toBeInstanceOf(CorruptEntryError);
      await expect(kv.get('bad')).rejects.toMatchObject({ code: 'KV_CORRUPT_ENTRY', key: 'bad' });
      expect(await kv.getText('good')).toBe('fine');
      expect(await kv.keys()).toEqual(['also-good', 'good']);
      expect(reported.map((e) => e.key).sort()).toEqual(['bad', 'not_a_key']);
      expect(await kv.getMany(['good', 'bad'])).toEqual([expect.any(Uint8Array), undefined]);
      // The damaged key can be overwritten or deleted.
      await kv.put('bad', 'repaired');
      expect(await kv.getText('bad')).toBe('repaired');
      expect(await kv.delete('not_a_key')).toBe(false); // a user key "not_a_key" encodes differently
      expect(await kv.clear()).toBe(4);
    });

    it('an entry whose checksum fails gets one answer from every read call, cache on and off', async () => {
      const env = getEnv();
      for (const cache of [false, true]) {
        const reported: CorruptEntryError[] = [];
        const kv = make({ onCorruptEntry: (e) => reported.push(e), cache });
        await kv.putMany([
          ['good', 'fine'],
          ['flipped', 'a value long enough to be worth a checksum'],
        ]);
        const ref = { kind: 'ConfigMap' as const, namespace: env.namespace, name: holderOf(kv.bucket, 'flipped') };
        const stored = (await env.api.get(ref)).binaryData!.flipped!;
        const bytes = Buffer.from(stored, 'base64');
        bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0x01, bytes.length - 1); // the last payload byte: the header still decodes, the CRC-32 does not match
        await env.api.mergePatch(ref, { binaryData: { flipped: bytes.toString('base64') } });
        await eventually(async () => expect(await kv.get('flipped').catch((e: unknown) => e)).toBeInstanceOf(CorruptEntryError));
        await expect(kv.has('flipped')).rejects.toMatchObject({ code: 'KV_CORRUPT_ENTRY', key: 'flipped' });
        await expect(kv.getEntry('flipped')).rejects.toBeInstanceOf(CorruptEntryError);
        expect(await kv.keys(), `cache ${cache}`).toEqual(['good']);
        expect([...(await kv.list()).keys()]).toEqual(['good']);
        expect((await kv.entries()).map((e) => e.key)).toEqual(['good']);
        expect(await kv.getMany(['flipped', 'good'])).toEqual([undefined, expect.any(Uint8Array)]);
        expect((await kv.stats()).corrupt).toBe(1);
        expect(reported.length).toBeGreaterThan(0);
        expect(reported.every((e) => e.key === 'flipped' && /checksum/.test(e.message))).toBe(true);
        expect(await kv.clear()).toBe(2);
        expect((await env.api.get(ref)).binaryData ?? {}).toEqual({});
      }
    });

    it("removes and overwrites an entry added by hand to the ConfigMap's plain-text data map", async () => {
      const env = getEnv();
      // Keys of one object (in a sharded bucket, entries added by hand count where their hash puts them).
      const [stray, other, third] = keysOfOneObject('hand', 3) as [string, string, string];
      for (const cache of [false, true]) {
        const kv = make({ cache });
        await kv.putMany([
          ['a', '1'],
          [stray, 'x'],
        ]);
        const ref = { kind: 'ConfigMap' as const, namespace: env.namespace, name: holderOf(kv.bucket, stray) };
        // A ConfigMap key may live in only one of the maps: move the entry to `data`, and add another.
        await env.api.jsonPatch(ref, [
          { op: 'remove', path: `/binaryData/${stray}` },
          { op: 'add', path: '/data', value: { [stray]: 'typed with kubectl edit', [other]: 'also by hand' } },
        ]);
        await eventually(async () => expect(await kv.get(stray).catch((e: unknown) => e)).toBeInstanceOf(CorruptEntryError));
        expect(await kv.delete(stray), `cache ${cache}`).toBe(true);
        expect((await env.api.get(ref)).data).toEqual({ [other]: 'also by hand' });
        await kv.put(other, 'now through k8s-kv');
        expect(await kv.getText(other)).toBe('now through k8s-kv');
        expect((await env.api.get(ref)).data ?? {}).toEqual({});
        await env.api.mergePatch(ref, { data: { [third]: 'by hand again' } });
        await eventually(async () => expect((await kv.stats()).corrupt).toBe(1));
        expect(await kv.clear()).toBe(3); // a, the overwritten one, and the corrupt third
        const after = await env.api.get(ref);
        expect(after.data ?? {}).toEqual({});
        expect(after.binaryData ?? {}).toEqual({});
      }
    });

    it('refuses a string value that is not well-formed Unicode instead of changing it', async () => {
      const kv = make();
      for (const value of ['\uD800', 'a\uDC00b', 'end\uD83D']) {
        const error = await kv.put('k', value).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(InvalidValueError);
        expect((error as Error).message).toMatch(/lone surrogate/);
        await expect(kv.putMany([['k', value]])).rejects.toBeInstanceOf(InvalidValueError);
        await expect(kv.update('k', () => value)).rejects.toBeInstanceOf(InvalidValueError);
      }
      await kv.put('k', 'pairs are fine: \uD83D\uDE00');
      expect(await kv.getText('k')).toBe('pairs are fine: \uD83D\uDE00');
      const bytes = new Uint8Array([0xed, 0xa0, 0x80]); // what a lone surrogate would be in WTF-8: bytes are stored as they are
      await kv.put('raw', bytes);
      expect(await kv.get('raw')).toEqual(bytes);
    });

    it('gives typed errors for bad input', async () => {
      const env = getEnv();
      expect(() => createKV({ bucket: 'Bad_Name', api: env.api })).toThrow(InvalidBucketNameError);
      expect(() => createKV({ bucket: 'a'.repeat(64), api: env.api })).toThrow(/63/);
      const kv = make();
      await expect(kv.put(42 as unknown as string, 'x')).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(kv.put('k', { an: 'object' } as unknown as string)).rejects.toBeInstanceOf(InvalidValueError);
      await expect(kv.put('k', 'v', { ttl: -1 })).rejects.toMatchObject({ code: 'KV_INVALID_OPTION' });
      expect(await kv.keys()).toEqual([]);
    });

    it('names a missing namespace', async () => {
      const env = getEnv();
      const kv = make({ namespace: env.missingNamespace });
      const error = await kv.put('k', 'v').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NamespaceNotFoundError);
      expect((error as Error).message).toContain(env.missingNamespace);
    });

    it('names what RBAC refuses', async () => {
      const env = getEnv();
      const kv = make({ api: env.forbiddenApi });
      const error = await kv.put('k', 'v').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ForbiddenError);
      expect(error).toMatchObject({ code: 'KV_FORBIDDEN', resource: 'configmaps', namespace: env.namespace });
      expect((error as Error).message).toMatch(/RBAC/);
      await expect(kv.get('k')).rejects.toBeInstanceOf(ForbiddenError);
    });

    it('tears the bucket down and can start again', async () => {
      const env = getEnv();
      const kv = make();
      await kv.put('a', '1');
      await kv.teardown();
      await expect(env.api.get({ kind: 'ConfigMap', namespace: env.namespace, name: kv.bucket })).rejects.toMatchObject({ status: 404 });
      expect(await kv.get('a')).toBeUndefined();
      await kv.teardown();
      await kv.put('b', '2');
      expect(await kv.keys()).toEqual(['b']);
    });

    it('serves reads from the watch cache with read-your-writes, and sees other writers', async () => {
      const env = getEnv();
      const counted = countingApi(env.api);
      const kv = make({ api: counted.api });
      await kv.put('a', '1');
      expect(await kv.getText('a')).toBe('1');
      counted.reset();
      await kv.put('a', '2');
      expect(await kv.getText('a')).toBe('2');
      for (let i = 0; i < 20; i++) await kv.get('a');
      expect(counted.counts.get ?? 0).toBe(0);
      const other = make({ bucket: kv.bucket, namespace: env.namespace });
      await other.put('b', 'from another pod');
      await eventually(async () => expect(await kv.getText('b')).toBe('from another pod'));
      await other.delete('a');
      await eventually(async () => expect(await kv.has('a')).toBe(false));
    });

    it('watch reports puts and deletes made by other writers', async () => {
      const env = getEnv();
      const kv = make();
      await kv.put('existing', 'x');
      const events: KVChangeEvent[] = [];
      const stop = await kv.watch((e) => events.push(e));
      const other = make({ bucket: kv.bucket, namespace: env.namespace, cache: false });
      await other.put('new', '1');
      await other.put('existing', 'changed');
      await other.delete('new');
      await eventually(() => expect(events.length).toBeGreaterThanOrEqual(3));
      expect(events).toEqual([
        { type: 'put', key: 'new' },
        { type: 'put', key: 'existing' },
        { type: 'delete', key: 'new' },
      ]);
      stop();
      await other.put('after', 'stop');
      await new Promise((r) => setTimeout(r, 200));
      expect(events).toHaveLength(3);
    });

    it('fails calls after close', async () => {
      const kv = make();
      await kv.put('a', '1');
      await kv.close();
      await expect(kv.get('a')).rejects.toBeInstanceOf(ClosedError);
      const onError = vi.fn();
      const again = make({ onError });
      await again.close();
      expect(onError).not.toHaveBeenCalled();
    });
  });
}
