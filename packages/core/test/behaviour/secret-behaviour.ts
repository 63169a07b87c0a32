/**
 * The same engine with the object kind as a parameter: a bucket kept in a
 * Secret (experimental `kind: 'Secret'`). Run against the in-memory port
 * (packages/core/test/secret-bucket.test.ts) and the real API server
 * (test/integration/secret-bucket.test.ts).
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { BucketFullError, createKV, ForbiddenError, type KV, type KVChangeEvent, type KVOptions } from '@k8s-kv/core';
import { bucketName } from '../../../../test/support/test-helpers.ts';
import type { KvTestEnv } from './kv-behaviour.ts';

export function describeSecretBucket(name: string, getEnv: () => KvTestEnv): void {
  describe(`Secret-backed bucket (${name})`, () => {
    const open: KV[] = [];
    const make = (options: Partial<KVOptions> = {}): KV => {
      const env = getEnv();
      const kv = createKV({ bucket: bucketName('secret'), namespace: env.namespace, api: env.api, kind: 'Secret', ...options });
      open.push(kv);
      return kv;
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((kv) => kv.close()));
    });

    it('keeps entries in an Opaque Secret, never in a ConfigMap', async () => {
      const env = getEnv();
      const kv = make({ app: 'vault' });
      await kv.putMany([
        ['token:a', 's3cr3t'],
        ['bin', new Uint8Array([0, 255])],
      ]);
      expect(await kv.getText('token:a')).toBe('s3cr3t');
      expect(await kv.get('bin')).toEqual(new Uint8Array([0, 255]));
      const secret = await env.api.get({ kind: 'Secret', namespace: env.namespace, name: kv.bucket });
      expect(secret.type).toBe('Opaque');
      expect(secret.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'k8s-kv', 'k8s-kv.io/app': 'vault', 'k8s-kv.io/bucket': kv.bucket });
      expect(Object.keys(secret.data ?? {}).sort()).toEqual(['bin', 'token_3Aa']);
      await expect(env.api.get({ kind: 'ConfigMap', namespace: env.namespace, name: kv.bucket })).rejects.toMatchObject({ status: 404 });
    });

    it('supports every operation: update, delete, clear, watch, teardown', async () => {
      const env = getEnv();
      const kv = make();
      const other = make({ bucket: kv.bucket });
      const events: KVChangeEvent[] = [];
      const stop = await other.watch((e) => events.push(e));
      await kv.put('n', '1', { ttl: 60_000 });
      expect(new TextDecoder().decode(await kv.update('n', (v) => String(Number(new TextDecoder().decode(v)) + 1)))).toBe('2');
      await kv.put('gone', 'x');
      expect(await kv.delete('gone')).toBe(true);
      expect(await kv.keys()).toEqual(['n']);
      for (let i = 0; i < 100 && events.length < 4; i++) await new Promise((r) => setTimeout(r, 20));
      expect(events).toEqual([
        { type: 'put', key: 'n' },
        { type: 'put', key: 'n' },
        { type: 'put', key: 'gone' },
        { type: 'delete', key: 'gone' },
      ]);
      stop();
      expect(await kv.clear()).toBe(1);
      await kv.teardown();
      await expect(env.api.get({ kind: 'Secret', namespace: env.namespace, name: kv.bucket })).rejects.toMatchObject({ status: 404 });
    });

    it('has the same 1 MiB limit', async () => {
      const kv = make({ maxBytes: 1_048_576 }); // one object that does not split
      await kv.putMany([0, 1, 2, 3].map((i) => [`p${i}`, new Uint8Array(randomBytes(240_000))] as [string, Uint8Array]));
      await expect(kv.put('more', new Uint8Array(randomBytes(200_000)))).rejects.toBeInstanceOf(BucketFullError);
    });

    it('names the secrets resource when RBAC refuses', async () => {
      const env = getEnv();
      const kv = make({ api: env.forbiddenApi });
      await expect(kv.put('k', 'v')).rejects.toBeInstanceOf(ForbiddenError);
      await expect(kv.put('k', 'v')).rejects.toMatchObject({ resource: 'secrets' });
    });
  });
}
