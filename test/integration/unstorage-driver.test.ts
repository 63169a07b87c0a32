// The unstorage driver against a real kube-apiserver (test/cluster): the same
// conformance suite as the in-memory unit test, then what only a real server
// shows: the ConfigMap it writes, and the RBAC its README documents.
import { CoreV1Api } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createStorage } from 'unstorage';
import { createKV, decodeEnvelope, decodeKey, decodeKeyFull, ForbiddenError, LABEL_BUCKET, LABEL_MANAGED_BY } from '@k8s-kv/core';
import k8sKvDriver from '@k8s-kv/unstorage-driver';
import { describeDriverConformance } from '../../packages/unstorage-driver/test/conformance.ts';
import { adminKubeConfig, createTestNamespace, grantRole, kubeconfigPath, userKubeConfig, type TestNamespace } from '../setup/cluster.ts';

let ns: TestNamespace;
beforeAll(async () => {
  ns = await createTestNamespace('unstorage-driver');
});
afterAll(async () => {
  await ns?.cleanup();
});

describeDriverConformance('real API server', (bucket) => ({ bucket, namespace: ns.name, kubeconfig: adminKubeConfig() }));
describeDriverConformance('real API server, cache off', (bucket) => ({ bucket, namespace: ns.name, kubeconfig: adminKubeConfig(), cache: false }));
describeDriverConformance('real API server, 4 shards', (bucket) => ({ bucket, namespace: ns.name, kubeconfig: adminKubeConfig(), shards: 4 }));

describe('unstorage driver on a real API server', () => {
  it('follows a bucket that splits as it grows: every item, and one watch event per write, none for a split', async () => {
    const driver = k8sKvDriver({ bucket: 'grows', namespace: ns.name, kubeconfig: kubeconfigPath('admin') });
    const storage = createStorage({ driver });
    const events: string[] = [];
    const unwatch = await storage.watch((event, key) => events.push(`${event} ${key}`));
    const items = Array.from({ length: 300 }, (_, i) => ({ key: `cache:page:${i}`, value: { html: randomBytes(330).toString('base64'), i } }));
    for (let i = 0; i < items.length; i += 30) await storage.setItems(items.slice(i, i + 30));
    await storage.removeItem('cache:page:7');
    const kv = createKV({ bucket: 'grows', namespace: ns.name, kubeConfig: adminKubeConfig(), cache: false });
    expect((await kv.stats()).layout).toBe('elastic');
    expect((await kv.stats()).shards).toBeGreaterThan(1);
    await kv.close();
    expect((await storage.getKeys('cache:page')).length).toBe(299);
    expect(await storage.getItem('cache:page:42')).toEqual(items[42]!.value);
    await vi.waitFor(() => expect(events.length).toBe(301), { timeout: 15_000 });
    await new Promise((r) => setTimeout(r, 200));
    expect(events.filter((e) => e.startsWith('update ')).length).toBe(300);
    expect(events.filter((e) => e.startsWith('remove '))).toEqual(['remove cache:page:7']);
    await unwatch();
    await storage.clear();
    expect(await storage.getKeys()).toEqual([]);
    await storage.dispose();
  });

  it('keeps the items in one labelled ConfigMap named after the bucket, binary values as bytes', async () => {
    const driver = k8sKvDriver({ bucket: 'cm-contents', namespace: ns.name, kubeconfig: kubeconfigPath('admin') });
    const storage = createStorage({ driver });
    await storage.setItem('user:42', { name: 'Ada' });
    await storage.setItemRaw('bin:blob', new Uint8Array([0, 255, 1, 254]));
    await storage.setItem('page$', { mtime: 1 });

    const core = adminKubeConfig().makeApiClient(CoreV1Api);
    const cm = await core.readNamespacedConfigMap({ name: 'cm-contents', namespace: ns.name });
    expect(cm.metadata?.labels?.[LABEL_MANAGED_BY]).toBe('k8s-kv');
    expect(cm.metadata?.labels?.[LABEL_BUCKET]).toBe('cm-contents');
    const stored = new Map<string, { text: boolean; value: Uint8Array }>();
    for (const [dataKey, b64] of Object.entries({ ...cm.data, ...cm.binaryData })) {
      const decoded = decodeEnvelope(Buffer.from(b64, 'base64'));
      const key = decoded.fullKey ? decodeKeyFull(decoded.fullKey) : decodeKey(dataKey);
      if (key.kind !== 'plain') throw new Error(`cannot decode data key ${dataKey}`);
      stored.set(key.key, { text: decoded.text, value: decoded.value });
    }
    expect([...stored.keys()].sort()).toEqual(['bin:blob', 'page$', 'user:42']);
    expect(Buffer.from(stored.get('user:42')!.value).toString()).toBe('{"name":"Ada"}');
    expect(stored.get('user:42')!.text).toBe(true);
    expect([...stored.get('bin:blob')!.value]).toEqual([0, 255, 1, 254]);
    expect(stored.get('bin:blob')!.text).toBe(false);
    await storage.dispose();
  });

  it('works with exactly the Role the README documents; without it, errors say what is missing', async () => {
    await grantRole(ns.name, 'alice', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] }]);
    const alice = createStorage({ driver: k8sKvDriver({ bucket: 'rbac-alice', namespace: ns.name, kubeconfig: userKubeConfig('alice') }) });
    const events: string[] = [];
    const unwatch = await alice.watch((event, key) => {
      events.push(`${event} ${key}`);
    });
    await alice.setItem('a', 1, { ttl: 60 });
    await alice.setItems([
      { key: 'b', value: 2 },
      { key: 'c', value: 3 },
    ]);
    expect(await alice.getItems(['a', 'b', 'c'])).toEqual([
      { key: 'a', value: 1 },
      { key: 'b', value: 2 },
      { key: 'c', value: 3 },
    ]);
    expect((await alice.getMeta('a')).ttl).toBeGreaterThan(0);
    await alice.removeItem('a');
    await alice.clear();
    expect(await alice.getKeys()).toEqual([]);
    await expect.poll(() => events, { timeout: 15_000 }).toContain('remove c');
    await unwatch();
    await alice.dispose();

    const bob = createStorage({ driver: k8sKvDriver({ bucket: 'rbac-bob', namespace: ns.name, kubeconfig: userKubeConfig('bob') }) });
    const error = await bob.setItem('x', 'y').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ForbiddenError);
    expect((error as Error).message).toMatch(/^\[unstorage\] \[k8s-kv\] bucket "rbac-bob": Forbidden: user "bob" may not "\w+" configmaps in namespace/);
    expect(error).toMatchObject({ code: 'KV_FORBIDDEN', cause: expect.objectContaining({ code: 'KV_FORBIDDEN' }) });
    await bob.dispose();
  });
});
