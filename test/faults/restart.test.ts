// Faults: the API server (and its etcd) restarts in the middle of a mixed
// workload of four processes. Every acknowledged write must be there
// afterwards; calls in flight either succeed or fail with a typed, retryable
// error; a watch cache must reconverge and keep serving. This project runs
// alone, never beside another test file (vitest.config.ts): a restart cuts every client.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createKV, type KV } from '@k8s-kv/core';
import { adminKubeConfig, createTestNamespace, kubeconfigPath, restartTestCluster, type TestNamespace } from '../setup/cluster.ts';
import { runWorkload } from '../integration/workers/workload.ts';

let ns: TestNamespace;
beforeAll(async () => {
  ns = await createTestNamespace('faults');
});
afterAll(async () => {
  await ns?.cleanup();
});

async function converged(cached: KV, truth: KV, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const [a, b] = await Promise.all([cached.list(), truth.list()]);
    const same = a.size === b.size && [...b].every(([k, v]) => Buffer.compare(Buffer.from(v), Buffer.from(a.get(k) ?? new Uint8Array([1, 2, 3]))) === 0);
    if (same) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`watch cache did not reconverge in ${timeoutMs} ms (${a.size} vs ${b.size} keys)`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
  it(`survives an API server restart (${signal}) in the middle of 5,000 operations`, async () => {
    const bucket = `restart-${signal.toLowerCase()}`;
    const kubeConfig = adminKubeConfig();
    const errors: unknown[] = [];
    const watcher = createKV({ bucket, namespace: ns.name, kubeConfig, app: 'load', onError: (e) => errors.push(e) });
    const truth = createKV({ bucket, namespace: ns.name, kubeConfig, app: 'load', cache: false });
    await watcher.keys(); // the cache is running before the workload starts
    let downtimeMs = 0;
    const result = await runWorkload({
      kubeconfig: kubeconfigPath(),
      kubeConfig,
      namespace: ns.name,
      bucket,
      processes: 4,
      opsPerProcess: 1250,
      onProgress: {
        after: 1500,
        run: async () => {
          downtimeMs = (await restartTestCluster({ signal })).downtimeMs;
        },
      },
    });
    const reconvergeMs = await converged(watcher, truth, 30_000);
    console.log(
      `restart (${signal}): ${result.operations} operations, ${result.acknowledged} acknowledged, ${result.failed.length} failed (${[...new Set(result.failed.map((f) => f.code))].join(', ') || 'none'}), server down ${downtimeMs} ms, watch cache reconverged ${reconvergeMs} ms after the workload, ${errors.length} background errors reported`,
    );
    expect(downtimeMs).toBeGreaterThan(0);
    expect(result.operations).toBe(5000);
    for (const failure of result.failed) expect(failure).toMatchObject({ retryable: true, code: expect.stringMatching(/^KV_(UNAVAILABLE|CONFLICT)$/) });
    expect(result.mismatches).toEqual([]);
    for (const counter of result.counters) {
      expect(counter.stored).toBeGreaterThanOrEqual(counter.acknowledged);
      expect(counter.stored).toBeLessThanOrEqual(counter.acknowledged + counter.failed);
    }
    // The cache keeps serving: a write after the restart is seen through it.
    await truth.put('after-restart', 'yes');
    await converged(watcher, truth, 30_000);
    expect(await watcher.getText('after-restart')).toBe('yes');
    await Promise.all([watcher.close(), truth.close()]);
  }, 600_000);
}
