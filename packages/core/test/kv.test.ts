import { describe, expect, it } from 'vitest';
import { createKV, listBuckets } from '@k8s-kv/core';
import { createMemoryApi } from '@k8s-kv/core/testing';
import { describeKvBehaviour } from './behaviour/kv-behaviour.ts';
import { describeShardedBucket } from './behaviour/sharded-behaviour.ts';

const api = createMemoryApi({ namespaces: ['default', 'team-a'] });
const forbiddenApi = createMemoryApi({ namespaces: ['default', 'team-a'] });
for (const verb of ['get', 'list', 'watch', 'create', 'patch', 'delete'] as const) forbiddenApi.forbid(verb);

describeKvBehaviour('in-memory port', () => ({ api, namespace: 'team-a', missingNamespace: 'no-such-namespace', forbiddenApi }));
describeKvBehaviour('in-memory port, 4 shards', () => ({ api, namespace: 'team-a', missingNamespace: 'no-such-namespace', forbiddenApi }), { shards: 4 });
describeShardedBucket('in-memory port', () => ({ api, namespace: 'team-a', missingNamespace: 'no-such-namespace', forbiddenApi }));

describe('listBuckets (in-memory port)', () => {
  it('lists one namespace, or every namespace sorted by namespace and name', async () => {
    const multi = createMemoryApi({ namespaces: ['ns-a', 'ns-b'] });
    const stores = [
      createKV({ api: multi, namespace: 'ns-b', bucket: 'beta', cache: false }),
      createKV({ api: multi, namespace: 'ns-a', bucket: 'zeta', cache: false }),
      createKV({ api: multi, namespace: 'ns-b', bucket: 'alpha', cache: false, app: 'other' }),
    ];
    await Promise.all(stores.map((kv) => kv.put('k', 'v')));
    await Promise.all(stores.map((kv) => kv.close()));
    expect((await listBuckets({ api: multi, namespace: 'ns-b' })).map((b) => b.name)).toEqual(['alpha', 'beta']);
    const all = await listBuckets({ api: multi, allNamespaces: true });
    expect(all.map((b) => [b.namespace, b.name, b.app, b.keys])).toEqual([
      ['ns-a', 'zeta', 'default', 1],
      ['ns-b', 'alpha', 'other', 1],
      ['ns-b', 'beta', 'default', 1],
    ]);
    expect((await listBuckets({ api: multi, allNamespaces: true, app: 'other' })).map((b) => b.name)).toEqual(['alpha']);
  });
});

describe('createMemoryApi strategic merge patches', () => {
  it('refuses what it does not model (lists other than managedFields, $ directives) instead of guessing', async () => {
    const fake = createMemoryApi();
    await fake.create('ConfigMap', 'default', { metadata: { name: 'x' } });
    const ref = { kind: 'ConfigMap' as const, namespace: 'default', name: 'x' };
    await expect(fake.strategicMergePatch(ref, { metadata: { finalizers: ['a'] } })).rejects.toThrow(/lists \(\/metadata\/finalizers\) are not modelled/);
    await expect(fake.strategicMergePatch(ref, { data: { $patch: 'replace' } })).rejects.toThrow(/directive \$patch is not modelled/);
    expect((await fake.strategicMergePatch(ref, { metadata: { managedFields: [{}] }, data: { a: '1' } })).data).toEqual({ a: '1' });
  });
});
