// Faults: the API server (and its etcd) is killed and restarted while batches
// that span the shards of a sharded bucket are in flight. A batch is one atomic
// patch per shard, sent together: every shard's part must either have landed
// whole or the call must have failed with a retryable error; an acknowledged
// batch landed on every shard; nothing is half-acknowledged. Some writers have
// a short budget, so that calls in flight during the outage fail. This project
// runs alone (vitest.config.ts): a restart cuts every client.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createKV, encodeKey, KVError, shardIndex } from '@k8s-kv/core';
import { adminKubeConfig, createTestNamespace, restartTestCluster, type TestNamespace } from '../setup/cluster.ts';

let ns: TestNamespace;
beforeAll(async () => {
  ns = await createTestNamespace('sharded-restart');
});
afterAll(async () => {
  await ns?.cleanup();
});

const SHARDS = 4;
const KEYS_PER_BATCH = 8;

interface Outcome {
  op: 'putMany' | 'deleteMany';
  batch: number;
  ok: boolean;
  code?: string;
  retryable?: boolean;
}

it("a server restart in the middle of batches across shards: each shard's part landed whole or the call failed retryably", async () => {
  const bucket = 'batches';
  const kubeConfig = adminKubeConfig();
  const keysOf = (batch: number): string[] => Array.from({ length: KEYS_PER_BATCH }, (_, j) => `b${batch}/k${j}`);
  const shardOf = (key: string): number => shardIndex(encodeKey(key).dataKey, SHARDS);
  expect(new Set(keysOf(0).map(shardOf)).size).toBeGreaterThan(1); // a batch spans shards

  const setup = createKV({ bucket, namespace: ns.name, kubeConfig, shards: SHARDS });
  await setup.put('created', 'yes');
  await setup.close();

  const outcomes: Outcome[] = [];
  let nextBatch = 0;
  let restarted = false;
  let afterRestart = 0;
  const acknowledgedPuts: number[] = [];
  const writer = async (slot: number): Promise<void> => {
    // Half the writers give up after 2 s, so that calls caught by the outage fail; the others ride it out.
    const kv = createKV({ bucket, namespace: ns.name, kubeConfig, cache: slot % 2 === 0, retry: { maxElapsedMs: slot < 3 ? 2_000 : 60_000 } });
    try {
      while (!restarted || afterRestart < 40) {
        if (restarted) afterRestart++;
        const target = slot % 3 === 2 ? acknowledgedPuts.shift() : undefined;
        const outcome: Outcome = target === undefined ? { op: 'putMany', batch: nextBatch++, ok: false } : { op: 'deleteMany', batch: target, ok: false };
        try {
          if (outcome.op === 'putMany') {
            await kv.putMany(keysOf(outcome.batch).map((k) => [k, `v${outcome.batch}`] as [string, string]));
            acknowledgedPuts.push(outcome.batch);
          } else {
            await kv.deleteMany(keysOf(outcome.batch));
          }
          outcome.ok = true;
        } catch (error) {
          outcome.code = error instanceof KVError ? error.code : String(error);
          outcome.retryable = error instanceof KVError && error.retryable;
        }
        outcomes.push(outcome);
      }
    } finally {
      await kv.close();
    }
  };
  const writers = Promise.all(Array.from({ length: 6 }, (_, slot) => writer(slot)));
  while (outcomes.length < 60) await new Promise((resolve) => setTimeout(resolve, 20));
  const { downtimeMs } = await restartTestCluster({ signal: 'SIGKILL' });
  restarted = true;
  await writers;

  const check = createKV({ bucket, namespace: ns.name, kubeConfig, cache: false });
  const stored = await check.list();
  await check.close();
  const failed = outcomes.filter((o) => !o.ok);
  console.log(
    `sharded batches across a restart (SIGKILL, down ${downtimeMs} ms): ${outcomes.length} batches, ${failed.length} failed (${[...new Set(failed.map((f) => f.code))].join(', ') || 'none'})`,
  );

  // The final state of each batch's keys: deleted by a later deleteMany, or written by its putMany.
  const deletes = new Map(outcomes.filter((o) => o.op === 'deleteMany').map((o) => [o.batch, o]));
  const problems: string[] = [];
  let failedWithSomeShards = 0;
  for (const put of outcomes.filter((o) => o.op === 'putMany')) {
    const del = deletes.get(put.batch);
    const byShard = new Map<number, Array<string | undefined>>();
    for (const key of keysOf(put.batch)) {
      const value = stored.has(key) ? Buffer.from(stored.get(key)!).toString() : undefined;
      byShard.set(shardOf(key), [...(byShard.get(shardOf(key)) ?? []), value]);
    }
    for (const [shard, values] of byShard) {
      const present = values.filter((v) => v !== undefined);
      if (present.some((v) => v !== `v${put.batch}`)) problems.push(`batch ${put.batch} shard ${shard}: foreign values ${JSON.stringify(values)}`);
      // Each shard's part is one atomic patch: all its keys or none.
      if (present.length !== 0 && present.length !== values.length)
        problems.push(`batch ${put.batch} shard ${shard}: part landed half (${JSON.stringify(values)})`);
    }
    const all = [...byShard.values()].flat();
    const landed = [...byShard.values()].filter((values) => values.every((v) => v !== undefined)).length;
    if (!put.ok && !del && landed > 0 && landed < byShard.size) failedWithSomeShards++;
    if (del?.ok && all.some((v) => v !== undefined)) problems.push(`batch ${put.batch}: deleteMany acknowledged, keys remain`);
    if (put.ok && !del && all.some((v) => v === undefined)) problems.push(`batch ${put.batch}: putMany acknowledged, keys missing`);
  }
  console.log(`failed putMany batches whose parts landed on some shards but not all (allowed: the call failed): ${failedWithSomeShards}`);
  expect(problems).toEqual([]);
  for (const failure of failed) expect(failure).toMatchObject({ retryable: true, code: expect.stringMatching(/^KV_(UNAVAILABLE|CONFLICT)$/) });
  expect(afterRestart).toBeGreaterThanOrEqual(40);
}, 300_000);
