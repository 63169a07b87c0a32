// Elastic buckets against the real API server, beyond the behaviour suite: four OS processes
// writing, deleting and updating while one bucket splits from one ConfigMap into many, and a
// split refused by a ResourceQuota on the count of ConfigMaps.
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createKV, KVError, listBuckets } from '@k8s-kv/core';
import { eventually } from '../support/test-helpers.ts';
import { adminKubeConfig, createTestNamespace, kubeconfigPath, type TestNamespace } from '../setup/cluster.ts';
import { runWorkload } from './workers/workload.ts';

let ns: TestNamespace;
beforeAll(async () => {
  ns = await createTestNamespace('elastic');
});
afterAll(async () => {
  await ns?.cleanup();
});

it('4 processes x 1,000 mixed operations while the bucket splits from 1 ConfigMap into at least 16: the bucket equals the model', async () => {
  const result = await runWorkload({
    kubeconfig: kubeconfigPath(),
    kubeConfig: adminKubeConfig(),
    namespace: ns.name,
    bucket: 'grows',
    processes: 4,
    opsPerProcess: 1000,
    keysPerSlot: 40,
    valueBytes: 1500,
  });
  const [bucket] = await listBuckets({ kubeConfig: adminKubeConfig(), namespace: ns.name, app: 'load' });
  console.log(
    `elastic load: ${result.operations} operations, ${result.acknowledged} acknowledged, ${result.failed.length} failed; ${bucket?.keys} keys, ${bucket?.bytes} bytes in ${bucket?.shards} parts`,
  );
  expect(result.operations).toBe(4000);
  expect(result.failed).toEqual([]);
  expect(result.mismatches).toEqual([]);
  for (const counter of result.counters) expect(counter.stored).toBe(counter.acknowledged);
  expect(bucket).toMatchObject({ layout: 'elastic' });
  expect(bucket!.shards).toBeGreaterThanOrEqual(16);
}, 600_000);

it('a split that a ResourceQuota refuses leaves the bucket unsplit and working, and is reported once', async () => {
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const quota = await createTestNamespace('elastic-quota');
  try {
    // Two ConfigMaps: the bucket, and one child; the second child is refused. The test server runs no
    // quota controller, so the quota's usage is set by hand (admission keeps it up to date from then on).
    await core.createNamespacedResourceQuota({
      namespace: quota.name,
      body: { metadata: { name: 'configmaps' }, spec: { hard: { 'count/configmaps': '2' } } },
    });
    await core.replaceNamespacedResourceQuotaStatus({
      name: 'configmaps',
      namespace: quota.name,
      body: {
        metadata: { name: 'configmaps' },
        spec: { hard: { 'count/configmaps': '2' } },
        status: { hard: { 'count/configmaps': '2' }, used: { 'count/configmaps': '0' } },
      },
    });
    const errors: unknown[] = [];
    const kv = createKV({ bucket: 'capped', namespace: quota.name, kubeConfig: adminKubeConfig(), onError: (e) => errors.push(e) });
    const model = new Map<string, string>();
    for (let i = 0; i < 30; i++) {
      const batch = Array.from(
        { length: 10 },
        (_, j) =>
          [`k${i * 10 + j}`, `${i}.${j}.${'x'.repeat(10)}${Buffer.from(crypto.getRandomValues(new Uint8Array(330))).toString('base64')}`] as [string, string],
      );
      await kv.putMany(batch); // ~135 KiB in all: past the threshold several times
      for (const [k, v] of batch) model.set(k, v);
    }
    await eventually(() => expect(errors.length).toBeGreaterThan(0));
    await new Promise((r) => setTimeout(r, 500));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(KVError);
    expect((errors[0] as KVError).code).toBe('KV_FORBIDDEN');
    expect((errors[0] as Error).message).toMatch(/quota/i);
    // Unsplit: the bucket is one ConfigMap, not sealed, and every key is there.
    const reader = createKV({ bucket: 'capped', namespace: quota.name, kubeConfig: adminKubeConfig(), cache: false });
    const stats = await reader.stats();
    expect(stats).toMatchObject({ layout: 'single', keys: model.size });
    for (const [k, v] of model) expect(await reader.getText(k)).toBe(v);
    const head = await core.readNamespacedConfigMap({ name: 'capped', namespace: quota.name });
    expect(head.metadata?.annotations?.['k8s-kv.io/sealed']).toBeUndefined();
    await kv.put('after', 'still works');
    expect(await reader.getText('after')).toBe('still works');
    await Promise.all([kv.close(), reader.close()]);
  } finally {
    await quota.cleanup();
  }
}, 120_000);
