// The Keyv adapter's behaviour suite against the real API server: @keyv/test-suite
// (keyvTestSuite and keyvIteratorTests) with Keyv 5, then the adapter's own promises.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import Keyv from 'keyv';
import keyvTestSuite, { keyvIteratorTests } from '@keyv/test-suite';
import { createKV } from '@k8s-kv/core';
import KeyvK8sKv, { enableIterator } from '@k8s-kv/keyv-adapter';
import { describeKeyvAdapter, type KeyvAdapterTestEnv } from '../../packages/keyv-adapter/test/behaviour.ts';
import type { TestNamespace } from '../setup/cluster.ts';
import { keyvServerEnv } from '../setup/kv-env.ts';

let namespace: TestNamespace;
let env: KeyvAdapterTestEnv;

beforeAll(async () => {
  ({ env, namespace } = await keyvServerEnv('keyv'));
});
afterAll(async () => {
  await namespace?.cleanup();
});

describeKeyvAdapter('real API server', { keyvTestSuite, keyvIteratorTests }, () => env);

it('a Keyv store whose bucket splits as it grows keeps every value, iterates them all, and clears its namespace across parts', async () => {
  const store = new KeyvK8sKv({ bucket: 'keyv-grows', api: env.api, kubeNamespace: env.kubeNamespace });
  const keyv = enableIterator(new Keyv({ store, namespace: 'pages' }));
  const other = new Keyv({ store: new KeyvK8sKv({ bucket: 'keyv-grows', api: env.api, kubeNamespace: env.kubeNamespace }), namespace: 'other' });
  const values = Array.from({ length: 300 }, (_, i) => ({ key: `p${i}`, value: { body: randomBytes(330).toString('base64'), i } }));
  for (let i = 0; i < values.length; i += 30) expect(await keyv.setMany(values.slice(i, i + 30))).toEqual(Array(30).fill(true));
  await other.set('kept', 'yes');
  const kv = createKV({ bucket: 'keyv-grows', namespace: env.kubeNamespace, api: env.api, cache: false });
  expect((await kv.stats()).layout).toBe('elastic');
  expect(await keyv.get('p123')).toEqual(values[123]!.value);
  const seen: string[] = [];
  for await (const [key] of keyv.iterator!(undefined)) seen.push(String(key));
  expect(seen.sort()).toEqual(values.map((v) => v.key).sort());
  await keyv.clear();
  expect(await keyv.get('p1')).toBeUndefined();
  expect(await other.get('kept')).toBe('yes');
  expect((await kv.keys()).length).toBe(1);
  await kv.close();
  await Promise.all([keyv.disconnect(), other.disconnect()]);
});
