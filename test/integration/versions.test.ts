// What a client learns about the API server's release, and the watch behaviour the store's cache
// relies on, on every release of the version matrix (vitest.config.ts runs this file against each).
import { CoreV1Api, VersionApi, Watch } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
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
});
