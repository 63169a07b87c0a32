// Load: four processes run a mixed random workload of 5,000 operations on one
// bucket; the final state must equal the model built from the acknowledged ones.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { adminKubeConfig, createTestNamespace, kubeconfigPath, type TestNamespace } from '../setup/cluster.ts';
import { runWorkload } from './workers/workload.ts';

let ns: TestNamespace;
beforeAll(async () => {
  ns = await createTestNamespace('load');
});
afterAll(async () => {
  await ns?.cleanup();
});

it('4 processes x 1,250 mixed operations: the bucket equals the model', async () => {
  const result = await runWorkload({
    kubeconfig: kubeconfigPath(),
    kubeConfig: adminKubeConfig(),
    namespace: ns.name,
    bucket: 'load',
    processes: 4,
    opsPerProcess: 1250,
  });
  console.log(
    `load: ${result.operations} operations, ${result.acknowledged} acknowledged, ${result.failed.length} failed, ${result.keysChecked} keys and ${result.counters.length} counters checked`,
  );
  expect(result.operations).toBe(5000);
  expect(result.failed).toEqual([]);
  expect(result.mismatches).toEqual([]);
  for (const counter of result.counters) expect(counter.stored).toBe(counter.acknowledged);
}, 600_000);
