// Budgets, eviction and active expiry against the real API server: the behaviour
// suite (also run on the in-memory port), then four OS processes evicting from one
// bucket at once, every state of which is recorded from the server's own watch.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClientNodeApi, type KubeApi } from '@k8s-kv/core';
import { describeEvictionBehaviour } from '../../packages/core/test/behaviour/eviction-behaviour.ts';
import { adminKubeConfig, createTestNamespace, kubeconfigPath, type TestNamespace } from '../setup/cluster.ts';
import { recordObject, type RecordedEntry } from '../support/object-recorder.ts';
import { eventually } from '../support/test-helpers.ts';
import { runWorkerProcess } from '../support/worker-process.ts';

const WORKER = fileURLToPath(new URL('./workers/evict-worker.ts', import.meta.url));

let namespace: TestNamespace;
let api: KubeApi;
beforeAll(async () => {
  namespace = await createTestNamespace('eviction');
  api = createClientNodeApi(adminKubeConfig());
});
afterAll(async () => {
  await namespace?.cleanup();
});

describeEvictionBehaviour('real API server', () => ({ api, namespace: namespace.name }));

/** Runs an evict-worker process to completion: how many puts it had acknowledged, and its failures. */
const runWorker = async (task: object): Promise<{ acks: number; failures: string[] }> =>
  (await runWorkerProcess<{ acks: number; failures: string[] }>(WORKER, task))[0]!;

/** The order of 'oldest': by write time, then by data key. */
const older = (a: RecordedEntry, b: RecordedEntry): boolean => a.modifiedAt < b.modifiedAt || (a.modifiedAt === b.modifiedAt && a.dataKey < b.dataKey);

describe('four processes evicting from one bucket', () => {
  it('never remove an entry newer than the plan that evicted it', async () => {
    const bucket = 'evict-four-processes';
    const maxEntries = 160;
    const recording = await recordObject(api, namespace.name, bucket);
    const results = await Promise.all(
      [0, 1, 2, 3].map((id) =>
        runWorker({ kubeconfig: kubeconfigPath(), namespace: namespace.name, bucket, id, ops: 150, concurrency: 6, maxEntries, watchDelayMs: 30 }),
      ),
    );
    // The recording has caught up with the object as it is now.
    const final = await api.get({ kind: 'ConfigMap', namespace: namespace.name, name: bucket });
    await eventually(() => expect(recording.states.at(-1)?.resourceVersion).toBe(final.metadata.resourceVersion));
    recording.stop();
    expect(recording.failure).toBeUndefined();

    expect(results.flatMap((r) => r.failures)).toEqual([]);
    expect(results.reduce((sum, r) => sum + r.acks, 0)).toBe(600);
    const { states } = recording;
    let evicted = 0;
    const violations: string[] = [];
    const sizes: number[] = [];
    for (let i = 1; i < states.length; i++) {
      const [before, after] = [states[i - 1]!, states[i]!];
      sizes.push(after.entries.size);
      for (const gone of before.entries.values()) {
        if (after.entries.has(gone.dataKey)) continue;
        evicted += 1;
        // Any plan that saw `gone` also saw every entry that held the same text since before
        // `gone` was written: 'oldest' takes those first. One of them left in place, older
        // than `gone`, means the removal was not planned on a view holding `gone` as it was.
        for (const kept of after.entries.values()) {
          if (before.entries.get(kept.dataKey)?.b64 === kept.b64 && kept.since <= gone.since && older(kept, gone)) {
            violations.push(`state ${i}: removed ${gone.dataKey} (written ${gone.modifiedAt}) but kept the older ${kept.dataKey} (written ${kept.modifiedAt})`);
          }
        }
      }
    }
    expect(violations).toEqual([]);
    // 400 new keys (and 200 rewrites) into 160 entries: most were evicted at some point.
    expect(evicted).toBeGreaterThan(200);
    // The budget is kept by each plan, on its own view: a write may land beside the writes other
    // processes made meanwhile (at most one batch of 6 in flight each, plus what landed during
    // the 30 ms their watch is behind). What passes the budget is gone with the next eviction.
    expect(Math.max(...sizes)).toBeLessThanOrEqual(maxEntries + 3 * 2 * 6);
  });
});
