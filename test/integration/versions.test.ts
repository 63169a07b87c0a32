// What a client learns about the API server's release, and server behaviour the store relies on
// that the port parity cases cannot show (the in-memory port has no watch deadlines and no etcd),
// on every release of the version matrix (vitest.config.ts runs this file against each).
import { CoreV1Api, VersionApi, Watch } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClientNodeApi, createKV } from '@k8s-kv/core';
import { TOO_LARGE_FOR_ETCD } from '../../packages/core/src/engine/api-errors.ts';
import { resolveK8sVersion } from '../../scripts/cluster.mjs';
import { adminKubeConfig, createTestNamespace, type TestNamespace } from '../setup/cluster.ts';

let ns: TestNamespace;
let other: TestNamespace;
beforeAll(async () => {
  [ns, other] = await Promise.all([createTestNamespace('versions'), createTestNamespace('versions-other')]);
});
afterAll(async () => {
  await Promise.all([ns?.cleanup(), other?.cleanup()]);
});

describe('the test API server', () => {
  it('reports the release it was built from on GET /version, as kubectl and clients parse it', async () => {
    // The release pinned in test/cluster's module file for this project (go.mod, or go.<minor>.mod).
    const pinned = resolveK8sVersion(inject('k8s')).version;
    expect(inject('k8sVersion')).toBe(pinned);
    const info = await adminKubeConfig().makeApiClient(VersionApi).getCode();
    expect(info.gitVersion).toBe(pinned);
    const [, major, minor] = /^v(\d+)\.(\d+)\.\d+$/.exec(info.gitVersion)!;
    expect({ major: info.major, minor: info.minor }).toEqual({ major, minor });
  });

  it('ends a quiet watch with a bookmark that carries a newer resourceVersion', async () => {
    // The store's watch cache resumes from the last resourceVersion it saw: bookmarks keep that
    // recent while its own objects do not change, so a resumed watch is not refused as too old.
    const kc = adminKubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    const listed = await core.listNamespacedConfigMap({ namespace: ns.name });
    const startRv = listed.metadata!.resourceVersion!;
    const events: Array<{ type: string; resourceVersion: string | undefined }> = [];
    const ended = new Promise<void>((resolve, reject) => {
      void new Watch(kc)
        .watch(
          `/api/v1/namespaces/${ns.name}/configmaps`,
          { allowWatchBookmarks: true, resourceVersion: startRv, timeoutSeconds: 6 },
          (type: string, object: { metadata?: { resourceVersion?: string } }) => events.push({ type, resourceVersion: object.metadata?.resourceVersion }),
          (error: unknown) => (error ? reject(error) : resolve()),
        )
        .catch(reject);
    });
    // A change elsewhere moves the resourceVersion on without an event for this watch.
    await core.createNamespacedConfigMap({ namespace: other.name, body: { metadata: { name: 'elsewhere' } } });
    await ended;
    expect(events.length).toBeGreaterThan(0);
    expect(new Set(events.map((e) => e.type))).toEqual(new Set(['BOOKMARK']));
    expect(Number(events.at(-1)!.resourceVersion)).toBeGreaterThan(Number(startRv));
  });

  it('ends a watch from a resourceVersion older than it keeps with 410 Gone, which makes the cache relist', async () => {
    const api = createClientNodeApi(adminKubeConfig());
    const closed = await new Promise<unknown>((resolve, reject) => {
      api
        .watch('ConfigMap', ns.name, { resourceVersion: '1', onEvent: (event) => reject(new Error(`unexpected ${event.type}`)), onClose: resolve })
        .catch(resolve);
    });
    expect(closed).toMatchObject({ status: 410, reason: 'Expired' });
  });

  it("refuses an object over etcd's request limit in words the store recognizes, which reports a full bucket", async () => {
    // Within ConfigMap's 1 MiB of values, but long key names make the object larger than etcd's
    // request limit (1.5 MiB) or the API server's etcd client limit (2 MiB): each its own message.
    const api = createClientNodeApi(adminKubeConfig());
    const longKeys = (n: number): Record<string, string> =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`${String(i).padStart(6, '0')}${'k'.repeat(247)}`, 'AA==']));
    for (const [n, words] of [
      [6500, /request is too large/],
      [9000, /larger than max/],
    ] as const) {
      const refusal = (await api.create('ConfigMap', ns.name, { metadata: { name: `etcd-${n}` }, binaryData: longKeys(n) }).catch((e: unknown) => e)) as Error;
      expect(refusal).toMatchObject({ status: 500 });
      expect(refusal.message).toMatch(words);
      expect(refusal.message).toMatch(TOO_LARGE_FOR_ETCD);
    }
    const kv = createKV({ bucket: 'long-keys', namespace: ns.name, kubeConfig: adminKubeConfig(), cache: false });
    try {
      await kv.put('first', 'x');
      const entries = Array.from({ length: 8000 }, (_, i) => [`${String(i).padStart(6, '0')}${'k'.repeat(190)}`, 'v'] as const);
      await expect(kv.putMany(entries)).rejects.toMatchObject({ code: 'KV_BUCKET_FULL' });
      expect(await kv.keys()).toEqual(['first']);
    } finally {
      await kv.close();
    }
  });
});
