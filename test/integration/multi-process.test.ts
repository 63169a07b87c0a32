// Several OS processes writing one bucket at once, against the real API server.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKV } from '@k8s-kv/core';
import { adminKubeConfig, createTestNamespace, kubeconfigPath, type TestNamespace } from '../setup/cluster.ts';
import { runWorkerProcess } from '../support/worker-process.ts';

const WORKER = fileURLToPath(new URL('./workers/kv-worker.ts', import.meta.url));

interface Ack {
  op?: string;
  key?: string;
  value?: string;
}

/** Runs a worker process to completion; resolves to its acknowledged writes. */
const runWorker = (task: object): Promise<Ack[]> => runWorkerProcess<Ack>(WORKER, task);

let ns: TestNamespace;
beforeAll(async () => {
  ns = await createTestNamespace('multiproc');
});
afterAll(async () => {
  await ns?.cleanup();
});

describe('four processes, one bucket', () => {
  it('keeps every acknowledged write: 250 distinct keys each plus overlapping shared keys', async () => {
    const bucket = 'writes';
    const results = await Promise.all(
      [0, 1, 2, 3].map((id) => runWorker({ kubeconfig: kubeconfigPath(), namespace: ns.name, bucket, id, mode: 'writes', count: 250 })),
    );
    const kv = createKV({ bucket, namespace: ns.name, kubeConfig: adminKubeConfig(), app: 'multi-process', cache: false });
    const stored = await kv.list();
    await kv.close();
    let distinct = 0;
    const lastSharedWrite = new Map<string, Set<string>>();
    for (const acks of results) {
      const lastByKey = new Map<string, string>();
      for (const ack of acks) {
        if (ack.key!.startsWith('shared/')) lastByKey.set(ack.key!, ack.value!);
        else {
          distinct += 1;
          expect(new TextDecoder().decode(stored.get(ack.key!))).toBe(ack.value);
        }
      }
      for (const [key, value] of lastByKey) {
        if (!lastSharedWrite.has(key)) lastSharedWrite.set(key, new Set());
        lastSharedWrite.get(key)!.add(value);
      }
    }
    expect(distinct).toBe(1000);
    // A shared key ends with the last write of one of the processes.
    expect(lastSharedWrite.size).toBe(5);
    for (const [key, candidates] of lastSharedWrite) expect(candidates).toContain(new TextDecoder().decode(stored.get(key)));
    expect(stored.size).toBe(1005);
  });

  it('counts to 1000 when four processes each update one counter 250 times', async () => {
    const bucket = 'counter';
    const results = await Promise.all(
      [0, 1, 2, 3].map((id) => runWorker({ kubeconfig: kubeconfigPath(), namespace: ns.name, bucket, id, mode: 'counter', count: 250 })),
    );
    const kv = createKV({ bucket, namespace: ns.name, kubeConfig: adminKubeConfig(), app: 'multi-process', cache: false });
    expect(await kv.getText('counter')).toBe('1000');
    await kv.close();
    // Every update saw a distinct value: no two increments were merged.
    const seen = results.flat().map((a) => Number(a.value));
    expect(new Set(seen).size).toBe(1000);
    expect(Math.max(...seen)).toBe(1000);
  });
});
