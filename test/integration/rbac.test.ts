// RBAC against the real API server: the Role shipped in deploy/rbac.yaml is
// enough for every feature; identities without rights get a typed error that
// names what is missing; rights in one namespace do not reach another.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAllYaml, type V1PolicyRule, type V1Role } from '@kubernetes/client-node';
import { createKV, ForbiddenError, type KV, type KVChangeEvent } from '@k8s-kv/core';
import { createTestNamespace, grantRole, userKubeConfig, type TestNamespace } from '../setup/cluster.ts';

const manifest = loadAllYaml(readFileSync(new URL('../../deploy/rbac.yaml', import.meta.url), 'utf8')) as Array<{ kind: string }>;
const role = manifest.find((doc) => doc.kind === 'Role') as V1Role;
const rules = role.rules as V1PolicyRule[];

let mine: TestNamespace;
let other: TestNamespace;
let limited: TestNamespace;
let noDelete: TestNamespace;
const open: KV[] = [];
const kvAs = (user: 'alice' | 'bob', namespace: string, extra: Partial<Parameters<typeof createKV>[0]> = {}): KV => {
  const kv = createKV({ bucket: 'rbac', namespace, kubeConfig: userKubeConfig(user), retry: { maxElapsedMs: 2000 }, ...extra });
  open.push(kv);
  return kv;
};

beforeAll(async () => {
  [mine, other, limited, noDelete] = await Promise.all([
    createTestNamespace('rbac-mine'),
    createTestNamespace('rbac-other'),
    createTestNamespace('rbac-limited'),
    createTestNamespace('rbac-nodelete'),
  ]);
  await grantRole(mine.name, 'alice', rules);
  await grantRole(limited.name, 'alice', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'patch'] }]);
  await grantRole(noDelete.name, 'alice', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'patch'] }]);
});
afterAll(async () => {
  await Promise.all(open.map((kv) => kv.close()));
  await Promise.all([mine, other, limited, noDelete].map((ns) => ns?.cleanup()));
});

describe('RBAC', () => {
  it('the shipped Role grants exactly configmaps get, list, watch, create, patch, delete', () => {
    expect(rules).toEqual([{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] }]);
  });

  it('is enough for every feature', async () => {
    const kv = kvAs('alice', mine.name);
    const watcher = kvAs('alice', mine.name);
    const events: KVChangeEvent[] = [];
    const stop = await watcher.watch((e) => events.push(e));
    await kv.put('a', '1', { ttl: 60_000 });
    await kv.putMany([
      ['b', '2'],
      ['c', '3'],
    ]);
    expect(await kv.getText('a')).toBe('1');
    expect(await kv.getMany(['b', 'c'])).toHaveLength(2);
    expect(await kv.update('n', () => '1')).toBeDefined();
    expect(await kv.keys()).toEqual(['a', 'b', 'c', 'n']);
    expect(await kv.delete('a')).toBe(true);
    expect(await kv.deleteMany(['b'])).toEqual([true]);
    expect(await kv.clear()).toBe(2);
    expect((await kv.stats()).keys).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(events.length).toBeGreaterThanOrEqual(4);
    stop();
    await kv.teardown();
    expect(await kv.keys()).toEqual([]);
  });

  it('names the verb, resource and namespace an identity without rights lacks', async () => {
    const kv = kvAs('bob', mine.name);
    const error = await kv.put('x', 'y').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ForbiddenError);
    expect(error).toMatchObject({ code: 'KV_FORBIDDEN', verb: 'get', resource: 'configmaps', namespace: mine.name });
    expect((error as Error).message).toContain('deploy/rbac.yaml');
    await expect(kv.get('x')).rejects.toMatchObject({ code: 'KV_FORBIDDEN', verb: 'get' });
    await expect(kv.watch(() => {})).rejects.toMatchObject({ code: 'KV_FORBIDDEN', verb: 'watch' });
  });

  it('keeps rights in one namespace out of another', async () => {
    const inMine = kvAs('alice', mine.name);
    await inMine.put('secret-plan', 'mine only');
    const inOther = kvAs('alice', other.name);
    await expect(inOther.get('secret-plan')).rejects.toMatchObject({ code: 'KV_FORBIDDEN', namespace: other.name });
    await expect(inOther.put('x', 'y')).rejects.toMatchObject({ code: 'KV_FORBIDDEN', namespace: other.name });
    expect(await inMine.getText('secret-plan')).toBe('mine only');
  });

  it('works without list/watch by reading with GET, and says why once', async () => {
    const errors: unknown[] = [];
    const kv = kvAs('alice', limited.name, { onError: (e) => errors.push(e) });
    await kv.put('k', 'v');
    expect(await kv.getText('k')).toBe('v');
    expect(await kv.getText('k')).toBe('v');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'KV_FORBIDDEN', verb: 'watch' });
    await expect(kv.teardown()).rejects.toMatchObject({ code: 'KV_FORBIDDEN', verb: 'list' });
  });

  it('a sharded bucket without list/watch says why once too, not once per shard', async () => {
    const errors: unknown[] = [];
    const kv = kvAs('alice', limited.name, { bucket: 'rbac-sharded', shards: 4, onError: (e) => errors.push(e) });
    const entries = Array.from({ length: 12 }, (_, i): [string, string] => [`key-${i}`, `value ${i}`]);
    await kv.putMany(entries); // spread over the 4 shards
    for (const [key, value] of entries) expect(await kv.getText(key)).toBe(value);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'KV_FORBIDDEN', verb: 'watch' });
  });

  it('without the delete verb, everything but teardown works', async () => {
    const kv = kvAs('alice', noDelete.name);
    await kv.putMany([
      ['a', '1'],
      ['b', '2'],
    ]);
    expect(await kv.delete('a')).toBe(true);
    expect(await kv.update('b', () => '3')).toBeDefined();
    expect(await kv.clear()).toBe(1);
    await expect(kv.teardown()).rejects.toMatchObject({ code: 'KV_FORBIDDEN', verb: 'delete' });
  });
});
