// The randomized model check through the fault proxy: 4 OS processes run
// random put, putMany, delete, deleteMany, clear, update as increment and update
// as one-time token consumption on a plain bucket (with large values, so that it
// splits into parts under the faults) and a 4-shard bucket, while the proxy
// (test/support/fault-proxy.ts) cuts answers after the server applied the
// request, resets connections before it saw them, and resets single streams.
// At the end, the truth read directly from the server must equal the model of
// the acknowledged operations: a key written only by one slot holds the value of
// its last acknowledged call (or of a failed call after it); counters lie within
// [acknowledged, acknowledged + failed]; every token was consumed at most once;
// every call returned within its budget; every failure is typed and retryable.
//
// Seeded: the seed (random unless K8S_KV_MODEL_SEED gives one) drives every
// worker's operations and the proxy's faults, and is printed, so a failure can
// be replayed in kind (the interleaving is the scheduler's).
import { fileURLToPath } from 'node:url';
import { CoreV1Api } from '@kubernetes/client-node';
import { encodeKey } from '../../packages/core/src/codec/key-codec.ts';
import { expect, it } from 'vitest';
import { createKV } from '@k8s-kv/core';
import { adminKubeConfig } from '../setup/cluster.ts';
import { useProxiedNamespace } from '../support/cluster-proxy.ts';
import { runWorkerProcess } from '../integration/workers/workload.ts';
import type { ModelRecord, ModelTask } from './workers/model-worker.ts';

const WORKER = fileURLToPath(new URL('./workers/model-worker.ts', import.meta.url));
const SEED = process.env.K8S_KV_MODEL_SEED ? Number(process.env.K8S_KV_MODEL_SEED) : Math.floor(Math.random() * 2 ** 31);
const PROCESSES = 4;
const OPS_PER_PROCESS = 560;
const TOKENS = 24;
const BUDGET_MS = 8_000;
/** The plain bucket's values carry this much more, so that it splits (past the threshold) under the faults: 160 slot keys of ~2 KiB. */
const VALUE_BYTES = 2_000;
/** What a call may take beyond its budget: noticing the deadline, a loaded event loop. */
const BUDGET_SLACK_MS = 2_000;

const env = useProxiedNamespace('model-check');

const replay = `seed ${SEED} (replay with K8S_KV_MODEL_SEED=${SEED})`;

/** For the report: every object of the namespace, its metadata, and which of them hold `keys` (data keys of the plain bucket). */
async function dumpObjects(keys: string[]): Promise<void> {
  const objects = await adminKubeConfig().makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace: env.ns.name });
  for (const { metadata, binaryData } of objects.items) {
    const held = keys.filter((key) => binaryData?.[encodeKey(key).dataKey] !== undefined);
    console.log(
      `${metadata?.name} uid=${metadata?.uid} rv=${metadata?.resourceVersion} entries=${Object.keys(binaryData ?? {}).length} ` +
        `${JSON.stringify(metadata?.annotations ?? {})}${held.length > 0 ? ` holds ${held.join(', ')}` : ''}`,
    );
  }
}

it(`4 processes, plain and sharded buckets, lost answers and resets: the server equals the model (${replay})`, async () => {
  console.log(`model check: ${replay}`);
  const buckets = { plain: 'model-plain', sharded: 'model-sharded' };
  env.proxied.proxy.randomFaults({
    seed: SEED,
    rates: { loseAnswer: 0.05, reset: 0.015, loseAnswerStream: 0.01 },
    match: { watch: false, path: env.ns.name },
  });
  // The tokens are minted in the sharded bucket before any worker starts (past the proxy): a consumer
  // only ever meets a token whose minting was acknowledged. The plain bucket does not exist yet: the
  // workers create it, under faults.
  const minter = createKV({ bucket: buckets.sharded, namespace: env.ns.name, kubeConfig: adminKubeConfig(), app: 'model', cache: false, shards: 4 });
  await minter.putMany(Array.from({ length: TOKENS }, (_, n) => [`t/${n}`, 'fresh'] as [string, string]));
  await minter.close();
  const started = Date.now();
  const perProcess = await Promise.all(
    Array.from({ length: PROCESSES }, (_, id) =>
      runWorkerProcess<ModelRecord>(WORKER, {
        kubeconfig: env.proxied.kubeconfigPath(),
        namespace: env.ns.name,
        buckets,
        id,
        ops: OPS_PER_PROCESS,
        seed: SEED + id,
        slots: 8,
        keysPerSlot: 5,
        counters: 3,
        tokens: TOKENS,
        budgetMs: BUDGET_MS,
        requestTimeoutMs: 2_000,
        valueBytes: VALUE_BYTES,
      } satisfies ModelTask),
    ),
  );
  env.proxied.proxy.clearFaults();
  const elapsedMs = Date.now() - started;
  const faults = env.proxied.proxy.counts();

  // The truth, read past the proxy.
  const truth: Record<keyof typeof buckets, Map<string, string>> = { plain: new Map(), sharded: new Map() };
  for (const bucket of ['plain', 'sharded'] as const) {
    const direct = createKV({ bucket: buckets[bucket], namespace: env.ns.name, kubeConfig: adminKubeConfig(), app: 'model', cache: false });
    const listed = await direct.list().catch(async (error: unknown) => {
      await dumpObjects([]);
      throw error;
    });
    for (const [key, value] of listed) truth[bucket].set(key, Buffer.from(value).toString());
    await direct.close();
  }

  const all = perProcess.flat();
  const failed = all.filter((r) => !r.ok);
  const problems: string[] = [];

  // Slot keys: each written by one slot, one call after the other, so the model is exact:
  // an acknowledged call sets what the key may hold; a failed one adds its value as possible.
  const allowed = new Map<string, Set<string | null>>();
  const problemKeys: string[] = [];
  /** A stored value by its maker: `<process>.<operation>` (the plain bucket's values carry padding). */
  const short = (value: string | null): string => (value === null ? 'null' : value.split('.').slice(0, 2).join('.'));
  const slotTrace = (bucket: string, key: string): string =>
    slotOps
      .filter((r) => r.bucket === bucket && r.effects.some(([k]) => k === key))
      .map((r) => `${r.op} ${short(r.effects.find(([k]) => k === key)![1])} at +${r.at - started} ms for ${r.ms} ms ${r.ok ? 'ok' : `failed (${r.code})`}`)
      .join('; ');
  const slotOps = all.filter((r) => r.slot !== undefined);
  for (const record of slotOps) {
    for (const [key, value] of record.effects) {
      const id = `${record.bucket} ${key}`;
      if (record.ok) allowed.set(id, new Set([value]));
      else allowed.set(id, new Set([...(allowed.get(id) ?? [null]), value]));
    }
  }
  for (const [id, values] of allowed) {
    const [bucket, key] = id.split(' ') as ['plain' | 'sharded', string];
    const stored = truth[bucket].get(key) ?? null;
    if (!values.has(stored)) {
      problems.push(`${id}: holds ${short(stored)}, the model allows ${JSON.stringify([...values].map(short))}; calls: ${slotTrace(bucket, key)}`);
      if (bucket === 'plain') problemKeys.push(key);
    }
  }

  // Counters: within [acknowledged, acknowledged + failed].
  const counters = new Map<string, { acknowledged: number; failed: number }>();
  for (const record of all.filter((r) => r.op === 'increment')) {
    const id = `${record.bucket} ${record.key}`;
    const c = counters.get(id) ?? { acknowledged: 0, failed: 0 };
    if (record.ok) c.acknowledged += 1;
    else c.failed += 1;
    counters.set(id, c);
  }
  for (const [id, c] of counters) {
    const [bucket, key] = id.split(' ') as ['plain' | 'sharded', string];
    const stored = Number(truth[bucket].get(key) ?? 0);
    if (stored < c.acknowledged || stored > c.acknowledged + c.failed) {
      problems.push(`${id}: counter at ${stored}, acknowledged ${c.acknowledged} increments and ${c.failed} failed ones`);
    }
  }

  // Tokens: consumed at most once; what the server holds agrees with who was told they consumed it.
  const tokens = new Map<string, ModelRecord[]>();
  for (const record of all.filter((r) => r.op === 'consume')) {
    const id = `${record.bucket} ${record.key}`;
    tokens.set(id, [...(tokens.get(id) ?? []), record]);
  }
  const trace = (records: ModelRecord[]): string =>
    records
      .sort((a, b) => a.at - b.at)
      .map((r) => `${r.marker} at +${r.at - started} ms for ${r.ms} ms: ${r.ok ? (r.consumed ? 'consumed' : 'found it used') : `failed (${r.code})`}`)
      .join('; ');
  let consumedTokens = 0;
  for (const [id, consumers] of tokens) {
    const [bucket, key] = id.split(' ') as ['plain' | 'sharded', string];
    const stored = truth[bucket].get(key);
    const winners = consumers.filter((r) => r.ok && r.consumed);
    if (winners.length > 0) consumedTokens += 1;
    if (winners.length > 1)
      problems.push(`${id}: consumed ${winners.length} times; the server holds ${JSON.stringify(stored)}; consumers: ${trace(consumers)}`);
    if (winners.length === 1 && stored !== winners[0]!.marker)
      problems.push(`${id}: ${winners[0]!.marker} was told it consumed it, the server holds ${JSON.stringify(stored)}; consumers: ${trace(consumers)}`);
    if (winners.length === 0 && stored !== 'fresh' && !consumers.some((r) => !r.ok && r.marker === stored)) {
      problems.push(`${id}: holds ${JSON.stringify(stored)}, written by no call that may have consumed it; consumers: ${trace(consumers)}`);
    }
  }

  // Every call within its budget; every failure typed and retryable.
  const slowest = all.reduce((max, r) => Math.max(max, r.ms), 0);
  for (const record of all) {
    if (record.ms > BUDGET_MS + BUDGET_SLACK_MS) problems.push(`${record.op} on ${record.bucket} took ${record.ms} ms, over its ${BUDGET_MS} ms budget`);
  }
  for (const failure of failed) {
    if (!failure.retryable || !/^KV_(UNAVAILABLE|CONFLICT)$/.test(failure.code ?? '')) {
      problems.push(`${failure.op} on ${failure.bucket} failed with ${failure.code} (retryable: ${failure.retryable}): ${failure.message}`);
    }
  }

  const injected = (faults['lose-answer'] ?? 0) + (faults.reset ?? 0);
  console.log(
    `model check (${replay}): ${all.length} operations in ${(elapsedMs / 1000).toFixed(1)} s, ${failed.length} failed ` +
      `(${[...new Set(failed.map((f) => f.code))].join(', ') || 'none'}); faults injected ${JSON.stringify(faults)} over ${env.proxied.proxy.requests} requests; ` +
      `${allowed.size} keys, ${counters.size} counters, ${tokens.size} tokens (${consumedTokens} consumed) checked; slowest call ${slowest} ms`,
  );
  const reasons = new Map<string, number>();
  for (const failure of failed) {
    const reason = `${failure.op}: ${(failure.message ?? '')
      .replace(/"[^"]*"/g, '"…"')
      .replace(/\d+/g, 'N')
      .slice(0, 160)}`;
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  console.log([...reasons].map(([reason, n]) => `  ${n} x ${reason}`).join('\n'));
  const plain = createKV({ bucket: buckets.plain, namespace: env.ns.name, kubeConfig: adminKubeConfig(), app: 'model', cache: false });
  const layout = await plain.stats();
  await plain.close();
  console.log(`model check: the plain bucket is ${layout.layout}, in ${layout.shards} ConfigMaps`);
  expect(layout.layout, 'the plain bucket split under the faults').toBe('elastic');
  expect(all.length).toBeGreaterThanOrEqual(2_000);
  expect(injected, `lost answers and resets injected (${replay})`).toBeGreaterThanOrEqual(100);
  if (problemKeys.length > 0) await dumpObjects(problemKeys);
  expect(problems, `model check failed, ${replay}`).toEqual([]);
}, 600_000);
