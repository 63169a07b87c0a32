// The in-memory port must answer like the real API server: the same calls go
// to both, and their outcomes (success, status, reason, resulting data) must
// match, so the fake users test against cannot drift from the server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClientNodeApi, type KubeApi, type KubeObject } from '@k8s-kv/core';
import { createMemoryApi } from '@k8s-kv/core/testing';
import { adminKubeConfig, createTestNamespace, type TestNamespace } from '../setup/cluster.ts';

type Outcome = { ok: true; value: unknown } | { ok: false; status: number; reason: string | undefined };

const b64 = (text: string): string => Buffer.from(text).toString('base64');
const cm = (name: string, extra: Partial<KubeObject> = {}): KubeObject => ({ metadata: { name }, ...extra });
/** What must agree about an object (server-set fields like uid and timestamps differ by nature). */
const project = (o: KubeObject | undefined): unknown =>
  o && { name: o.metadata.name, labels: o.metadata.labels ?? {}, data: o.data ?? null, binaryData: o.binaryData ?? null, immutable: o.immutable ?? null };

async function outcome(run: () => Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: true, value: await run() };
  } catch (error) {
    const e = error as { status?: number; reason?: string };
    if (typeof e.status !== 'number') throw error;
    return { ok: false, status: e.status, reason: e.reason };
  }
}

interface Case {
  name: string;
  run: (api: KubeApi, ns: string) => Promise<unknown>;
}

const MiB = 1024 * 1024;
const cases: Case[] = [
  { name: 'get of a missing object is 404', run: (api, ns) => api.get({ kind: 'ConfigMap', namespace: ns, name: 'missing' }) },
  {
    name: 'create then create again is 409 AlreadyExists',
    run: async (api, ns) => {
      await api.create('ConfigMap', ns, cm('twice'));
      return api.create('ConfigMap', ns, cm('twice'));
    },
  },
  { name: 'invalid object name is 422', run: (api, ns) => api.create('ConfigMap', ns, cm('Not_Valid')) },
  { name: 'create in a missing namespace is 404', run: (api, ns) => api.create('ConfigMap', `${ns}-nope`, cm('x')) },
  ...['ok-key', 'a.b_c-D9', '.', '..', '..x', '.x', 'bad/key', 'bad:key', 'sp ace', 'é', 'k'.repeat(253), 'k'.repeat(254)].map((key) => ({
    name: `data key ${JSON.stringify(key.length > 20 ? `${key[0]}×${key.length}` : key)}`,
    run: async (api: KubeApi, ns: string) =>
      project(await api.create('ConfigMap', ns, cm(`key-${Buffer.from(key).toString('hex').slice(0, 40)}-${key.length}`, { binaryData: { [key]: b64('v') } }))),
  })),
  {
    name: 'same key in data and binaryData is 422',
    run: (api, ns) => api.create('ConfigMap', ns, cm('dup', { data: { k: 'a' }, binaryData: { k: b64('b') } })),
  },
  {
    name: 'exactly 1 MiB of values is accepted',
    run: async (api, ns) =>
      project(await api.create('ConfigMap', ns, cm('exact', { binaryData: { a: Buffer.alloc(MiB - 10).toString('base64') }, data: { b: 'x'.repeat(10) } }))),
  },
  {
    name: '1 MiB + 1 byte is 422',
    run: (api, ns) => api.create('ConfigMap', ns, cm('over', { binaryData: { a: Buffer.alloc(MiB - 10).toString('base64') }, data: { b: 'x'.repeat(11) } })),
  },
  {
    name: 'merge patch adds and null removes',
    run: async (api, ns) => {
      await api.create('ConfigMap', ns, cm('mp', { binaryData: { a: b64('1'), b: b64('2') } }));
      return project(await api.mergePatch({ kind: 'ConfigMap', namespace: ns, name: 'mp' }, { binaryData: { a: null, c: b64('3') } }));
    },
  },
  {
    name: 'merge patch past 1 MiB is 422',
    run: async (api, ns) => {
      await api.create('ConfigMap', ns, cm('mp-big', { binaryData: { a: Buffer.alloc(MiB - 5).toString('base64') } }));
      return api.mergePatch({ kind: 'ConfigMap', namespace: ns, name: 'mp-big' }, { binaryData: { b: b64('123456') } });
    },
  },
  {
    name: 'merge patch with a stale resourceVersion is 409',
    run: async (api, ns) => {
      const created = await api.create('ConfigMap', ns, cm('stale'));
      await api.mergePatch({ kind: 'ConfigMap', namespace: ns, name: 'stale' }, { data: { a: '1' } });
      return api.mergePatch(
        { kind: 'ConfigMap', namespace: ns, name: 'stale' },
        { metadata: { resourceVersion: created.metadata.resourceVersion }, data: { b: '2' } },
      );
    },
  },
  {
    name: 'merge patch with the current resourceVersion succeeds',
    run: async (api, ns) => {
      const created = await api.create('ConfigMap', ns, cm('fresh'));
      return project(
        await api.mergePatch(
          { kind: 'ConfigMap', namespace: ns, name: 'fresh' },
          { metadata: { resourceVersion: created.metadata.resourceVersion }, data: { b: '2' } },
        ),
      );
    },
  },
  {
    name: 'merge patch with another uid is 422',
    run: async (api, ns) => {
      await api.create('ConfigMap', ns, cm('uid'));
      return api.mergePatch({ kind: 'ConfigMap', namespace: ns, name: 'uid' }, { metadata: { uid: '00000000-0000-0000-0000-000000000000' }, data: { b: '2' } });
    },
  },
  {
    name: 'patches answered with metadata only: labels and uid, no entries; managedFields [{}] clears them',
    run: async (api, ns) => {
      const ref = { kind: 'ConfigMap' as const, namespace: ns, name: 'meta-only' };
      const created = await api.create('ConfigMap', ns, cm('meta-only', { metadata: { name: 'meta-only', labels: { l: 'v' } }, binaryData: { a: b64('1') } }));
      const merged = await api.mergePatch(ref, { metadata: { managedFields: [{}] }, binaryData: { b: b64('2') } }, { metadataOnly: true });
      const json = await api.jsonPatch(ref, [{ op: 'add', path: '/binaryData/c', value: b64('3') }], { metadataOnly: true });
      const shape = (o: KubeObject) => ({
        apiVersion: o.apiVersion,
        name: o.metadata.name,
        labels: o.metadata.labels,
        sameUid: o.metadata.uid === created.metadata.uid,
        newer: Number(o.metadata.resourceVersion) > Number(created.metadata.resourceVersion),
        binaryData: o.binaryData ?? null,
        managedFields: o.metadata.managedFields ?? null,
      });
      return {
        merged: shape(merged),
        json: shape(json),
        stored: project(await api.get(ref)),
        managedFields: (await api.get(ref)).metadata.managedFields ?? null,
      };
    },
  },
  {
    name: 'strategic merge patch adds and null removes, keeps labels',
    run: async (api, ns) => {
      await api.create('ConfigMap', ns, cm('smp', { metadata: { name: 'smp', labels: { l: 'v' } }, binaryData: { a: b64('1'), b: b64('2') } }));
      return project(await api.strategicMergePatch({ kind: 'ConfigMap', namespace: ns, name: 'smp' }, { binaryData: { a: null, c: b64('3') } }));
    },
  },
  {
    name: 'strategic merge patch with the right uid and managedFields [{}] succeeds and clears them',
    run: async (api, ns) => {
      const created = await api.create('ConfigMap', ns, cm('smp-uid', { binaryData: { a: b64('1') } }));
      const patched = await api.strategicMergePatch(
        { kind: 'ConfigMap', namespace: ns, name: 'smp-uid' },
        { metadata: { uid: created.metadata.uid, managedFields: [{}] }, binaryData: { b: b64('2') } },
      );
      return { object: project(patched), managedFields: patched.metadata.managedFields ?? null };
    },
  },
  {
    name: 'strategic merge patch with another uid is 422',
    run: async (api, ns) => {
      await api.create('ConfigMap', ns, cm('smp-other'));
      return api.strategicMergePatch(
        { kind: 'ConfigMap', namespace: ns, name: 'smp-other' },
        { metadata: { uid: '00000000-0000-0000-0000-000000000000' }, binaryData: { b: b64('2') } },
      );
    },
  },
  {
    name: 'strategic merge patch with an illegal key is 422',
    run: async (api, ns) => {
      await api.create('ConfigMap', ns, cm('smp-illegal'));
      return api.strategicMergePatch({ kind: 'ConfigMap', namespace: ns, name: 'smp-illegal' }, { binaryData: { 'a/b': b64('x') } });
    },
  },
  {
    name: 'strategic merge patch past 1 MiB is 422',
    run: async (api, ns) => {
      await api.create('ConfigMap', ns, cm('smp-big', { binaryData: { a: Buffer.alloc(MiB - 5).toString('base64') } }));
      return api.strategicMergePatch({ kind: 'ConfigMap', namespace: ns, name: 'smp-big' }, { binaryData: { b: b64('123456') } });
    },
  },
  {
    name: 'strategic merge patch of a missing object is 404',
    run: (api, ns) => api.strategicMergePatch({ kind: 'ConfigMap', namespace: ns, name: 'smp-absent' }, { binaryData: { a: b64('1') } }),
  },
  {
    name: 'strategic merge patch of a Secret merges its data',
    run: async (api, ns) => {
      await api.create('Secret', ns, { metadata: { name: 'smp-secret' }, type: 'Opaque', data: { a: b64('1') } });
      const patched = await api.strategicMergePatch({ kind: 'Secret', namespace: ns, name: 'smp-secret' }, { data: { b: b64('2') } });
      return patched.data;
    },
  },
  { name: 'patch of a missing object is 404', run: (api, ns) => api.mergePatch({ kind: 'ConfigMap', namespace: ns, name: 'absent' }, { data: { a: '1' } }) },
  {
    name: 'merge patch with an illegal key is 422',
    run: async (api, ns) => {
      await api.create('ConfigMap', ns, cm('illegal'));
      return api.mergePatch({ kind: 'ConfigMap', namespace: ns, name: 'illegal' }, { binaryData: { 'a/b': b64('x') } });
    },
  },
  {
    name: 'JSON patch test of the right value then replace',
    run: async (api, ns) => {
      await api.create('ConfigMap', ns, cm('jp1', { binaryData: { a: b64('1') } }));
      return project(
        await api.jsonPatch({ kind: 'ConfigMap', namespace: ns, name: 'jp1' }, [
          { op: 'test', path: '/binaryData/a', value: b64('1') },
          { op: 'replace', path: '/binaryData/a', value: b64('2') },
        ]),
      );
    },
  },
  {
    name: 'JSON patch failed test is 422',
    run: async (api, ns) => {
      await api.create('ConfigMap', ns, cm('jp2', { binaryData: { a: b64('1') } }));
      return api.jsonPatch({ kind: 'ConfigMap', namespace: ns, name: 'jp2' }, [
        { op: 'test', path: '/binaryData/a', value: b64('other') },
        { op: 'replace', path: '/binaryData/a', value: b64('2') },
      ]);
    },
  },
  {
    name: 'JSON patch test null passes for an absent key',
    run: async (api, ns) => {
      await api.create('ConfigMap', ns, cm('jp3', { binaryData: { a: b64('1') } }));
      return project(
        await api.jsonPatch({ kind: 'ConfigMap', namespace: ns, name: 'jp3' }, [
          { op: 'test', path: '/binaryData/b', value: null },
          { op: 'add', path: '/binaryData/b', value: b64('2') },
        ]),
      );
    },
  },
  {
    name: 'JSON patch test null fails for a present key',
    run: async (api, ns) => {
      await api.create('ConfigMap', ns, cm('jp4', { binaryData: { a: b64('1') } }));
      return api.jsonPatch({ kind: 'ConfigMap', namespace: ns, name: 'jp4' }, [{ op: 'test', path: '/binaryData/a', value: null }]);
    },
  },
  {
    name: 'JSON patch add into a missing map is 422',
    run: async (api, ns) => {
      await api.create('ConfigMap', ns, cm('jp5'));
      return api.jsonPatch({ kind: 'ConfigMap', namespace: ns, name: 'jp5' }, [{ op: 'add', path: '/binaryData/k', value: b64('1') }]);
    },
  },
  {
    name: 'JSON patch remove of a missing key is 422',
    run: async (api, ns) => {
      await api.create('ConfigMap', ns, cm('jp6', { binaryData: { a: b64('1') } }));
      return api.jsonPatch({ kind: 'ConfigMap', namespace: ns, name: 'jp6' }, [{ op: 'remove', path: '/binaryData/nope' }]);
    },
  },
  {
    name: 'removing the last key drops the map',
    run: async (api, ns) => {
      await api.create('ConfigMap', ns, cm('jp7', { binaryData: { a: b64('1') } }));
      return project(await api.jsonPatch({ kind: 'ConfigMap', namespace: ns, name: 'jp7' }, [{ op: 'remove', path: '/binaryData/a' }]));
    },
  },
  {
    name: 'JSON patch test of the uid',
    run: async (api, ns) => {
      const created = await api.create('ConfigMap', ns, cm('jp8', { binaryData: { a: b64('1') } }));
      const ok = project(
        await api.jsonPatch({ kind: 'ConfigMap', namespace: ns, name: 'jp8' }, [
          { op: 'test', path: '/metadata/uid', value: created.metadata.uid },
          { op: 'remove', path: '/binaryData/a' },
        ]),
      );
      return [
        ok,
        await outcome(() => api.jsonPatch({ kind: 'ConfigMap', namespace: ns, name: 'jp8' }, [{ op: 'test', path: '/metadata/uid', value: 'other' }])),
      ];
    },
  },
  {
    name: 'immutable ConfigMap refuses data changes',
    run: async (api, ns) => {
      await api.create('ConfigMap', ns, cm('frozen', { data: { a: '1' }, immutable: true }));
      return api.mergePatch({ kind: 'ConfigMap', namespace: ns, name: 'frozen' }, { data: { a: '2' } });
    },
  },
  {
    name: 'label value over 63 characters is 422',
    run: (api, ns) => api.create('ConfigMap', ns, { metadata: { name: 'label', labels: { 'k8s-kv.io/bucket': 'x'.repeat(64) } } }),
  },
  {
    name: 'delete with a wrong uid precondition is 409',
    run: async (api, ns) => {
      await api.create('ConfigMap', ns, cm('del'));
      return api.delete({ kind: 'ConfigMap', namespace: ns, name: 'del' }, { uid: '00000000-0000-0000-0000-000000000000' });
    },
  },
  {
    name: 'delete with the right uid, then get is 404',
    run: async (api, ns) => {
      const created = await api.create('ConfigMap', ns, cm('del2'));
      await api.delete({ kind: 'ConfigMap', namespace: ns, name: 'del2' }, { uid: created.metadata.uid! });
      return api.get({ kind: 'ConfigMap', namespace: ns, name: 'del2' });
    },
  },
  {
    name: 'list by label and by name',
    run: async (api, ns) => {
      await api.create('ConfigMap', ns, { metadata: { name: 'l1', labels: { app: 'x' } } });
      await api.create('ConfigMap', ns, { metadata: { name: 'l2', labels: { app: 'y' } } });
      const byLabel = await api.list('ConfigMap', ns, { labelSelector: 'app=x' });
      const byName = await api.list('ConfigMap', ns, { fieldSelector: 'metadata.name=l2' });
      return [byLabel.items.map(project), byName.items.map(project)];
    },
  },
];

let real: KubeApi;
let ns: TestNamespace;
beforeAll(async () => {
  ns = await createTestNamespace('parity');
  real = createClientNodeApi(adminKubeConfig());
});
afterAll(async () => {
  await ns?.cleanup();
});

describe('the in-memory port agrees with the real API server', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const memory = createMemoryApi({ namespaces: [ns.name] });
      const [onServer, inMemory] = [await outcome(() => c.run(real, ns.name)), await outcome(() => c.run(memory, ns.name))];
      expect(inMemory).toEqual(onServer);
    });
  }
});
