import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createStorage } from 'unstorage';
import { ForbiddenError, type KV } from '@k8s-kv/core';
import { createMemoryApi } from '@k8s-kv/core/testing';
import k8sKvDriver from '../src/index.ts';
import { describeDriverConformance } from './conformance.ts';

// One in-memory API server for the whole file: drivers on the same bucket
// share its data as two pods would.
const api = createMemoryApi();

describeDriverConformance('in-memory API', (bucket) => ({ bucket, api, namespace: 'default' }));
// Without core's read cache every read is a GET: the same contract holds.
describeDriverConformance('in-memory API, cache off', (bucket) => ({ bucket, api, namespace: 'default', cache: false }));
describeDriverConformance('in-memory API, 4 shards', (bucket) => ({ bucket, api, namespace: 'default', shards: 4 }));

function totalCalls(calls: Record<string, number>): number {
  return Object.values(calls).reduce((a, b) => a + b, 0);
}

describe('driver over the in-memory API', () => {
  it('makes no API call until first used, and creates the core store then', async () => {
    const own = createMemoryApi();
    const driver = k8sKvDriver({ bucket: 'lazy', api: own, namespace: 'default' });
    expect(totalCalls(own.calls)).toBe(0);
    const storage = createStorage({ driver });
    expect(totalCalls(own.calls)).toBe(0);
    await storage.setItem('k', 'v');
    expect(totalCalls(own.calls)).toBeGreaterThan(0);
    expect(own.peek({ kind: 'ConfigMap', namespace: 'default', name: 'lazy' })).toBeDefined();
    await storage.dispose();
  });

  it('setItems is one patch and getItems at most one read, whatever the batch size', async () => {
    for (const cache of [true, false]) {
      const own = createMemoryApi();
      const driver = k8sKvDriver({ bucket: 'batches', api: own, namespace: 'default', cache });
      const storage = createStorage({ driver });
      await storage.setItem('warm', 'up'); // creates the ConfigMap
      await storage.getItem('warm');
      own.resetCalls();
      await storage.setItems(Array.from({ length: 100 }, (_, i) => ({ key: `k:${i}`, value: i })));
      expect(own.calls.patch).toBe(1);
      expect(totalCalls(own.calls)).toBe(1);
      own.resetCalls();
      const items = await storage.getItems(Array.from({ length: 100 }, (_, i) => `k:${i}`));
      expect(items.map((item) => item.value)).toEqual(Array.from({ length: 100 }, (_, i) => i));
      expect(totalCalls(own.calls)).toBeLessThanOrEqual(1);
      own.resetCalls();
      await storage.clear();
      expect(own.calls.patch).toBe(1);
      await storage.dispose();
    }
  });

  it("reports API refusals as core's ForbiddenError, naming the bucket and the user, the original as cause", async () => {
    const own = createMemoryApi();
    own.forbid('patch');
    own.forbid('create');
    const storage = createStorage({ driver: k8sKvDriver({ bucket: 'rbac', api: own, namespace: 'team-a' }) });
    const error = await storage.setItem('k', 'v').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ForbiddenError);
    expect((error as Error).message).toMatch(
      /^\[unstorage\] \[k8s-kv\] bucket "rbac": Forbidden: user "memory-user" may not "(create|patch)" configmaps in namespace "team-a"/,
    );
    expect((error as { code: string }).code).toBe('KV_FORBIDDEN');
    expect((error as Error).cause).toBeInstanceOf(ForbiddenError);
    await storage.dispose();
  });

  it('getInstance returns the core store', async () => {
    const driver = k8sKvDriver({ bucket: 'instance', api, namespace: 'default' });
    const kv = driver.getInstance!() as KV;
    expect(kv.bucket).toBe('instance');
    expect(driver.getInstance!()).toBe(kv);
    await kv.put('from-core', 'hi');
    expect(await createStorage({ driver }).getItem('from-core')).toBe('hi');
    await driver.dispose!();
  });

  describe('kubeconfig option', () => {
    let dir: string | undefined;
    afterEach(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
      dir = undefined;
    });

    it('loads a kubeconfig file by path on first use (not at creation), leaving KUBECONFIG as it was', () => {
      dir = mkdtempSync(join(tmpdir(), 'k8s-kv-driver-'));
      const path = join(dir, 'config');
      writeFileSync(
        path,
        [
          'apiVersion: v1',
          'kind: Config',
          'clusters: [{ name: c, cluster: { server: "https://127.0.0.1:1" } }]',
          'users: [{ name: u, user: { token: t } }]',
          'contexts: [{ name: x, context: { cluster: c, user: u, namespace: from-file } }]',
          'current-context: x',
        ].join('\n'),
      );
      const before = process.env.KUBECONFIG;
      const missing = k8sKvDriver({ bucket: 'b', kubeconfig: join(dir, 'nope') });
      const driver = k8sKvDriver({ bucket: 'b', kubeconfig: path });
      expect(() => missing.getInstance!()).toThrow(/^\[unstorage\] \[k8s-kv\] .*nope/);
      expect((driver.getInstance!() as KV).namespace).toBe('from-file');
      expect(process.env.KUBECONFIG).toBe(before);
    });
  });
});
