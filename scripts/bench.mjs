#!/usr/bin/env node
// Benchmarks against a real API server (the current kube context with
// K8S_KV_BENCH_CONTEXT=1, else the local test API server), each operation
// beside a baseline built the way the original Go k8s-kv works — the whole
// bucket as one gzip blob in one ConfigMap key; get = GET + decode; put =
// GET + decode + encode + UPDATE under a mutex — measured in the same run.
// Each bucket size runs twice: a bucket in one ConfigMap (maxBytes 1 MiB, so that it
// never splits), and a bucket spread over SHARDS ConfigMaps (createKV({ shards })),
// against the same baseline. Default buckets, which split as they grow, are measured
// apart (scripts/bench/elastic.mjs).
//
//   pnpm bench                 full run (a few minutes)
//   pnpm bench -- --quick      fewer iterations
//   pnpm bench -- --json FILE  also write the results as JSON
//   pnpm bench -- --shards N   shards of the sharded buckets (default 32)
//   pnpm bench -- --procs      only the multi-process puts
//   pnpm bench -- --evict      only the put into a full evicting bucket against an empty one
//   pnpm bench -- --help       this text
//   pnpm bench -- --pin        the local API server on half of the CPUs, the benchmark
//                              and its writers on the others (Linux taskset), so that the
//                              clients' CPU does not compete with the server's
//   pnpm bench -- --elastic    only the elastic buckets (default options: one ConfigMap that
//                              splits as it grows), scripts/bench/elastic.mjs; the full run
//                              ends with them. `--elastic size,growth` runs some of its
//                              parts: size, baseline, small, growth, procs, patch
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createClientNodeApi, createKV, encodeKey, KubeConfig, shardIndex } from '@k8s-kv/core';
import { ensureCluster, stopCluster } from './cluster.mjs';
import { BaselineBucket } from './bench/baseline.mjs';
import { elasticLines, elasticParts, elasticTargets, runElastic } from './bench/elastic.mjs';
import { medianRun, procsLine, runWorkers, startWorker } from './bench/procs.mjs';
import { pinCpus } from './bench/server.mjs';
import { appValue, measure, percentile } from './bench/util.mjs';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
const scale = quick ? 0.25 : 1;
const n = (count) => Math.max(10, Math.round(count * scale));
/** Shards of the sharded buckets: ~2,000 keys of ~450 bytes make ~30 KiB per shard. */
const SHARDS = args.includes('--shards') ? Number(args[args.indexOf('--shards') + 1]) : 32;
const procsOnly = args.includes('--procs');
const evictOnly = args.includes('--evict');
if (args.includes('--help')) {
  // The usage lines at the top of this file.
  const usage = readFileSync(fileURLToPath(import.meta.url), 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('//   '));
  console.log(usage.map((line) => line.slice(5)).join('\n'));
  process.exit(0);
}
const pin = args.includes('--pin');

const elasticOnly = args.includes('--elastic');
const elasticChosen = elasticParts(elasticOnly ? args[args.indexOf('--elastic') + 1] : undefined);

// ------------------------------------------------------------------ setup
const kubeConfig = new KubeConfig();
let stopAfter = async () => {};
/** The kubeconfig file worker processes load (the local API server only). */
let kubeconfigFile;
if (process.env.K8S_KV_BENCH_CONTEXT === '1') {
  kubeConfig.loadFromDefault();
} else {
  const info = await ensureCluster({ log: (m) => console.error(`[cluster] ${m}`) });
  kubeconfigFile = info.kubeconfig;
  kubeConfig.loadFromFile(kubeconfigFile);
  if (info.started)
    stopAfter = async () => {
      await stopCluster({ log: () => {} });
    };
}
const api = createClientNodeApi(kubeConfig);
const namespace = process.env.K8S_KV_BENCH_NAMESPACE || 'default';

/** What the parts of the benchmark in scripts/bench/ need to know of the run. */
const ctx = { kubeConfig, kubeconfigFile, namespace, api, quick, n };
if (pin) pinCpus(ctx);

/**
 * The options of the buckets the table compares with the baseline: `shards` > 1, a
 * sharded bucket; else one ConfigMap that never splits (`maxBytes` 1 MiB: without it, a
 * bucket splits as it grows, which the elastic part below measures).
 */
const layoutOptions = (shards) => (shards > 1 ? { shards } : { maxBytes: 1048576 });

const rows = [];
const extra = {};
function row(operation, size, ours, base) {
  rows.push({ operation, size, ours, base });
  const f = (r, key) => (r ? r[key].toFixed(key === 'ops' ? 0 : 2) : '—');
  const ratio = base ? `${(ours.ops / base.ops).toFixed(1)}x ops/s, ${(base.p50 / ours.p50).toFixed(1)}x p50` : '—';
  console.error(
    `  ${operation.padEnd(28)} ${size.padEnd(11)} ours ${f(ours, 'ops')} ops/s p50 ${f(ours, 'p50')} ms | baseline ${f(base, 'ops')} ops/s p50 ${f(base, 'p50')} ms | ${ratio}`,
  );
}

/**
 * One bucket size: every operation of k8s-kv beside the baseline's. `shards` > 1: a
 * sharded bucket, compared with the baseline rows `bases` measured by the
 * one-object run of the same size (same run, same data).
 */
async function scenario(label, keyCount, valueSize, shards = 1, bases = undefined) {
  console.error(`\n${label}: ${keyCount} keys of ~${valueSize} bytes${shards > 1 ? `, ${shards} shards` : ''}`);
  const entries = Array.from({ length: keyCount }, (_, i) => /** @type {[string, string]} */ ([`key-${String(i).padStart(5, '0')}`, appValue(i, valueSize)]));
  const bucket = shards > 1 ? `bench-${keyCount}-s${shards}` : `bench-${keyCount}`;
  const ours = createKV({ bucket, namespace, kubeConfig, app: 'bench', ...layoutOptions(shards) });
  const uncached = createKV({ bucket, namespace, kubeConfig, app: 'bench', ...layoutOptions(shards), cache: false });
  await ours.teardown();
  // Load in ~256 KiB batches (one patch each, per shard).
  for (let i = 0; i < entries.length; i += 400) await ours.putMany(entries.slice(i, i + 400));
  const baseline = bases ? undefined : new BaselineBucket(api, namespace, `bench-baseline-${keyCount}`);
  if (baseline) {
    await baseline.init();
    await baseline.putAll(entries);
  }
  const base = (operation, measureBaseline) => bases?.get(operation) ?? measureBaseline();
  const stats = await ours.stats();
  console.error(`  k8s-kv bucket: ${stats.keys} keys, ${(stats.bytes / 1024).toFixed(0)} KiB stored`);
  extra[label] = { keys: stats.keys, storedBytes: stats.bytes, rawBytes: entries.reduce((s, [, v]) => s + v.length, 0) };
  const key = (i) => entries[(i * 7919) % entries.length][0];
  const size = shards > 1 ? `${keyCount} keys, ${shards} shards` : `${keyCount} keys`;
  const measured = new Map();
  const add = (operation, ours, baseRow) => {
    measured.set(operation, baseRow);
    row(operation, size, ours, baseRow);
  };

  await ours.get(key(0)); // starts the cache
  add('get (cached)', await measure(n(5000), (i) => ours.get(key(i))), await base('get (cached)', () => measure(n(200), (i) => baseline.get(key(i)))));
  add('get (uncached)', await measure(n(300), (i) => uncached.get(key(i))), measured.get('get (cached)'));
  add('list (cached)', await measure(n(300), () => ours.list('key-')), await base('list (cached)', () => measure(n(100), () => baseline.list('key-'))));
  add(
    'put, 1 writer',
    await measure(n(300), (i) => ours.put(key(i), `v${i}`)),
    await base('put, 1 writer', () => measure(n(100), (i) => baseline.put(key(i), `v${i}`))),
  );
  add(
    'put, 64 concurrent callers',
    await measure(n(2000), (i) => ours.put(key(i), `c${i}`), 64),
    await base('put, 64 concurrent callers', () => measure(n(200), (i) => baseline.put(key(i), `c${i}`), 64)),
  );
  // Delete keys that exist: add them first (not measured).
  await ours.putMany(Array.from({ length: n(300) }, (_, i) => [`del-${i}`, 'x']));
  if (baseline) await baseline.putAll(Array.from({ length: n(300) }, (_, i) => [`del-${i}`, 'x']));
  add(
    'delete, 1 writer',
    await measure(n(300), (i) => ours.delete(`del-${i}`)),
    await base('delete, 1 writer', () => measure(n(100), (i) => baseline.delete(`del-${i}`))),
  );
  await Promise.all([ours.close(), uncached.close()]);
  return measured;
}

/**
 * Put p50 at 10 and at 2,000 keys in the same layout, measured in alternating rounds
 * (10, 2000, 10, 2000, ...) on the buckets the scenarios left, so that both sizes see the
 * same state of the machine and the server. (Measured minutes apart, in the scenarios
 * above, the same put drifted by a few ms between runs; see docs/PERFORMANCE.md.)
 */
async function putBySize(shards, rounds = 6, perRound = n(50)) {
  const stores = [10, 2000].map((keyCount) =>
    createKV({ bucket: shards > 1 ? `bench-${keyCount}-s${shards}` : `bench-${keyCount}`, namespace, kubeConfig, app: 'bench', ...layoutOptions(shards) }),
  );
  const keysOf = await Promise.all(stores.map((kv) => kv.keys('key-'))); // starts each cache
  const samples = [[], []];
  for (let round = 0; round < rounds; round++) {
    for (const [s, kv] of stores.entries()) {
      const keys = keysOf[s];
      for (let i = 0; i < perRound; i++) {
        const t0 = performance.now();
        await kv.put(keys[((round * perRound + i) * 7919) % keys.length], `r${round}-${i}`);
        samples[s].push(performance.now() - t0);
      }
    }
  }
  await Promise.all(stores.map((kv) => kv.close()));
  const [small, large] = samples
    .map((list) => list.sort((a, b) => a - b))
    .map((list) => ({ p50: percentile(list, 50), p99: percentile(list, 99), count: list.length }));
  console.error(
    `  put p50, ${shards} shard(s), interleaved: 10 keys ${small.p50.toFixed(2)} ms, 2000 keys ${large.p50.toFixed(2)} ms (${(large.p50 / small.p50).toFixed(2)}x)`,
  );
  return { shards, small, large };
}

/**
 * Put p50 into a FULL evicting bucket against an EMPTY one, same options (`evict: 'oldest'`,
 * `maxBytes` 256 KiB, ~450-byte values), in alternating rounds. Every put into the full one
 * writes a new key: the bucket stays at its budget, and a put evicts when a sixteenth of the
 * budget has filled up again (its patch then carries the removals). The empty one rewrites
 * ten keys. A control shows what is eviction's own: a bucket of the same keys, bytes and
 * `maxBytes` (so the same layout: a `maxBytes` one object can hold keeps the bucket one
 * object) that does not evict, whose puts rewrite its keys (so that it keeps its size).
 */
async function evictingPut(rounds = 6, perRound = n(50)) {
  const maxBytes = 256 * 1024;
  const open = (bucket, options) => createKV({ bucket, namespace, kubeConfig, app: 'bench', ...options });
  const empty = open('bench-evict-empty', { evict: 'oldest', maxBytes });
  const full = open('bench-evict-full', { evict: 'oldest', maxBytes });
  const control = open('bench-evict-control', { maxBytes });
  await Promise.all([empty.teardown(), full.teardown(), control.teardown()]);
  // Fill the full one to twice its budget (it evicts as it goes), in batches; the control with as many keys.
  for (let i = 0; i < 1200; i += 100) await full.putMany(Array.from({ length: 100 }, (_, j) => [`fill-${i + j}`, appValue(i + j, 450)]));
  const kept = await full.keys();
  for (let i = 0; i < kept.length; i += 100) await control.putMany(kept.slice(i, i + 100).map((key, j) => [key, appValue(i + j, 450)]));
  await empty.put('warm-up', 'x');
  await Promise.all([empty.keys(), control.keys()]); // every cache runs: writes plan on them
  const before = await full.stats();
  const samples = [[], [], []];
  for (let round = 0; round < rounds; round++) {
    for (const [s, kv] of [empty, full, control].entries()) {
      for (let i = 0; i < perRound; i++) {
        const key = s === 0 ? `key-${i % 10}` : s === 1 ? `new-${round}-${i}` : kept[(round * perRound + i) % kept.length];
        const t0 = performance.now();
        await kv.put(key, appValue(round * perRound + i, 450));
        samples[s].push(performance.now() - t0);
      }
    }
  }
  const after = await full.stats();
  const controlStats = await control.stats();
  await Promise.all([empty.teardown(), full.teardown(), control.teardown()]);
  await Promise.all([empty.close(), full.close(), control.close()]);
  const [e, f, c] = samples
    .map((list) => list.sort((a, b) => a - b))
    .map((list) => ({ p50: percentile(list, 50), p99: percentile(list, 99), count: list.length }));
  const result = {
    maxBytes,
    empty: e,
    full: f,
    control: c,
    fullBytes: [before.bytes, after.bytes],
    fullKeys: [before.keys, after.keys],
    controlBytes: controlStats.bytes,
    objects: { full: after.shards, control: controlStats.shards },
  };
  console.error(
    `  put p50 into a full evicting bucket ${f.p50.toFixed(2)} ms (p99 ${f.p99.toFixed(2)}), into an empty one ${e.p50.toFixed(2)} ms (p99 ${e.p99.toFixed(2)}): ${(f.p50 / e.p50).toFixed(2)}x; into the same size without eviction ${c.p50.toFixed(2)} ms (p99 ${c.p99.toFixed(2)})`,
  );
  return result;
}

/** One line of the report for {@link evictingPut}. */
function evictLine(r) {
  return (
    `Put into a full evicting bucket (evict 'oldest', maxBytes ${r.maxBytes / 1024} KiB, ${r.fullKeys[1]} keys, ${(r.fullBytes[1] / 1024).toFixed(0)} KiB) against an empty one, ${r.full.count} puts each in alternating rounds: ` +
    `p50 ${r.full.p50.toFixed(2)} ms vs ${r.empty.p50.toFixed(2)} ms (${(r.full.p50 / r.empty.p50).toFixed(2)}x), p99 ${r.full.p99.toFixed(2)} ms vs ${r.empty.p99.toFixed(2)} ms. ` +
    `Control, the same keys, size (${(r.controlBytes / 1024).toFixed(0)} KiB) and layout (objects: ${r.objects.full} and ${r.objects.control}) without eviction: p50 ${r.control.p50.toFixed(2)} ms, p99 ${r.control.p99.toFixed(2)} ms (eviction's own share: ${(r.full.p50 / r.control.p50).toFixed(2)}x at p50).`
  );
}

/** Heap and RSS of a fresh process holding the 2000-key bucket in its cache, every value decoded. */
async function memoryWithFullBucket() {
  if (!kubeconfigFile) return undefined;
  return startWorker(ctx, { mode: 'memory', bucket: 'bench-2000' }, { execArgv: ['--expose-gc'], stdin: 'ignore' }).done;
}

/** Creates a bucket and every one of its shards: one key put into each shard, then deleted. */
async function createAllShards(bucket, shards) {
  const seeds = new Map();
  for (let i = 0; seeds.size < shards; i++) {
    const key = `seed-${i}`;
    const index = shardIndex(encodeKey(key).dataKey, shards);
    if (!seeds.has(index)) seeds.set(index, key);
  }
  const kv = createKV({ bucket, namespace, kubeConfig, app: 'bench', ...layoutOptions(shards), cache: false });
  await kv.putMany([...seeds.values()].map((key) => [key, 'x']));
  await kv.deleteMany([...seeds.values()]);
  await kv.close();
}

/**
 * `processes` writer processes, `perProcess` puts each, into one bucket; with `separate`,
 * each process into a bucket of its own (nothing shared: what this machine's CPU allows
 * that many processes when no write can collide with another).
 */
async function multiProcess(processes, perProcess, concurrency, shards = 1, separate = false) {
  const bucket = `bench-procs-${processes}${separate ? 'x' : ''}-s${shards}-${Date.now().toString(36)}`;
  const bucketOf = (id) => (separate ? `${bucket}-${id}` : bucket);
  // Steady state: every object of the bucket exists before the clock starts (creating
  // 256 shards is a one-time cost, not the write throughput being measured).
  for (const name of new Set(Array.from({ length: processes }, (_, id) => bucketOf(id)))) await createAllShards(name, shards);
  const tasks = Array.from({ length: processes }, (_, id) => ({ bucket: bucketOf(id), id, count: perProcess, concurrency, options: layoutOptions(shards) }));
  const { ms, patches, attemptsPerPatch, cores } = await runWorkers(ctx, tasks);
  let stored = 0;
  for (const name of new Set(tasks.map((task) => task.bucket))) {
    const check = createKV({ bucket: name, namespace, kubeConfig, app: 'bench', cache: false });
    stored += (await check.keys('put-')).length; // the measured writes, not the warm-up keys
    await check.teardown();
    await check.close();
  }
  return {
    processes,
    shards,
    separate,
    patches,
    attemptsPerPatch,
    writes: processes * perProcess,
    ops: (processes * perProcess) / (ms / 1000),
    stored,
    lost: processes * perProcess - stored,
    cores,
  };
}

/**
 * The target table: rows [name, value, limit, show]. A positive limit is a floor, a
 * negative one a ceiling, -Infinity marks a row shown for comparison, a function decides.
 */
function targetTable(targets) {
  const verdict = (value, limit) => {
    if (limit === -Infinity) return 'for comparison';
    const ok = typeof limit === 'function' ? limit(value) : limit < 0 ? value <= -limit : value >= limit;
    return ok ? 'met' : 'NOT met';
  };
  return [
    '| target | measured | |',
    '| --- | --- | --- |',
    ...targets.map(([name, value, limit, show]) => `| ${name} | ${show(value)} | ${verdict(value, limit)} |`),
  ];
}

// ------------------------------------------------------------------ run
console.error(`k8s-kv benchmark against ${kubeConfig.getCurrentCluster()?.server}, namespace ${namespace}${quick ? ' (quick)' : ''}`);
if (evictOnly) {
  console.error('\nput into a full evicting bucket against an empty one, interleaved rounds');
  console.log(evictLine(await evictingPut()));
  await stopAfter();
  process.exit(0);
}
if (elasticOnly) {
  const elastic = await runElastic(ctx, elasticChosen);
  console.log([...elasticLines(elastic), '', ...targetTable(elasticTargets(elastic))].join('\n'));
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ elastic, targets: elasticTargets(elastic).map(([name, value]) => ({ name, value })) }, null, 2));
  await stopAfter();
  process.exit(0);
}
if (!procsOnly) {
  const smallBases = await scenario('small', 10, 450);
  const largeBases = await scenario('large', 2000, 460);
  await scenario('small, sharded', 10, 450, SHARDS, smallBases);
  await scenario('large, sharded', 2000, 460, SHARDS, largeBases);
}
let bySize = [];
if (!procsOnly) {
  console.error('\nput p50 by bucket size, interleaved rounds');
  bySize = [await putBySize(1), await putBySize(SHARDS)];
}
let evicting;
if (!procsOnly) {
  console.error('\nput into a full evicting bucket against an empty one, interleaved rounds');
  evicting = await evictingPut();
}
const memory = procsOnly ? undefined : await memoryWithFullBucket();
const procs = [];
if (kubeconfigFile) {
  // The same number of puts into the same bucket size, by one process or shared by four;
  // into a one-object bucket, then into a sharded one. Then the control: four processes,
  // each into a bucket of its own, where no write can collide with another's. A run lasts
  // a few seconds, and on this machine one run of the same thing varies by some 30%:
  // three alternating rounds, the median of each kept.
  const total = n(4800);
  const rounds = quick ? 1 : 3;
  for (const shards of [1, SHARDS]) {
    console.error(
      `\nmulti-process puts, ${shards} shard(s), ${rounds} round(s): ${total} puts by 1 process, then by 4 (each process: 16 concurrent callers), then by 4 into 4 buckets`,
    );
    const runs = [[], [], []];
    for (let round = 0; round < rounds; round++) {
      const measured = [
        await multiProcess(1, total, 16, shards),
        await multiProcess(4, total / 4, 16, shards),
        await multiProcess(4, total / 4, 16, shards, true),
      ];
      for (const [i, p] of measured.entries()) {
        console.error(`  ${procsLine(p)}`);
        runs[i].push(p);
      }
    }
    procs.push(...runs.map(medianRun));
  }
}
const elastic = procsOnly ? undefined : await runElastic(ctx);

// ------------------------------------------------------------------ report
if (procsOnly) {
  for (const p of procs) console.log(`Multi-process: ${procsLine(p)}`);
  await stopAfter();
  process.exit(0);
}
const fmt = (v, d = 0) => (v === undefined ? '—' : v.toFixed(d));
const lines = [
  '| operation | bucket | k8s-kv ops/s | p50 ms | p99 ms | baseline ops/s | p50 ms | p99 ms | ops/s ratio | p50 speed-up |',
  '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map(
    ({ operation, size, ours, base }) =>
      `| ${operation} | ${size} | ${fmt(ours.ops)} | ${fmt(ours.p50, 3)} | ${fmt(ours.p99, 3)} | ${fmt(base?.ops)} | ${fmt(base?.p50, 2)} | ${fmt(base?.p99, 2)} | ${base ? fmt(ours.ops / base.ops, 1) + 'x' : '—'} | ${base ? fmt(base.p50 / ours.p50, 1) + 'x' : '—'} |`,
  ),
];
const find = (op, size) => rows.find((r) => r.operation === op && r.size === size);
const cachedGet = find('get (cached)', '2000 keys');
const put64 = find('put, 64 concurrent callers', '2000 keys');
const [bySizeOne, bySizeSharded] = bySize;
const procsOf = (shards) => procs.filter((p) => p.shards === shards);
const procTarget = (shards, name) => {
  const [one, four] = procsOf(shards);
  return [name, four.ops / one.ops, four.lost === 0 && one.lost === 0 ? 1 : Infinity, (v) => `${v.toFixed(2)}x`];
};
/** What this machine allows four processes at all: four into four buckets vs one process. */
const procControl = (shards) => {
  const [one, , apart] = procsOf(shards);
  return [
    `(${shards === 1 ? 'one ConfigMap' : `${shards} shards`}, control) 4 processes into 4 separate buckets vs 1 process`,
    apart.ops / one.ops,
    -Infinity,
    (v) => `${v.toFixed(2)}x`,
  ];
};
const targets = [
  ['cached get p50 >= 100x faster than the baseline get (2000 keys)', cachedGet.base.p50 / cachedGet.ours.p50, 100, (v) => `${v.toFixed(0)}x`],
  ['put ops/s with 64 callers >= 10x the baseline (2000 keys)', put64.ours.ops / put64.base.ops, 10, (v) => `${v.toFixed(1)}x`],
  // Elastic buckets (default options): issue 14's targets.
  ...elasticTargets(elastic),
  // Earlier targets, kept for comparison: the size ratio of a sharded bucket (default
  // buckets are elastic now: above), and 4 processes against 1, which issue 14 restated as
  // 4 processes on one bucket against 4 on a bucket each (above: what the library controls).
  [
    `(${SHARDS} shards) put p50 at 2000 keys vs 10 keys (interleaved; earlier target <= 1.5x)`,
    bySizeSharded.large.p50 / bySizeSharded.small.p50,
    -Infinity,
    (v) => `${v.toFixed(2)}x`,
  ],
  ...(procs.length ? [procTarget(SHARDS, `(${SHARDS} shards) 4 processes vs 1 process in put ops/s (earlier target >= 1x)`).with(2, -Infinity)] : []),
  // The same two in a bucket of one ConfigMap, for comparison (not targets: its writes grow with it).
  ['(one ConfigMap) put p50 at 2000 keys vs 10 keys (interleaved)', bySizeOne.large.p50 / bySizeOne.small.p50, -Infinity, (v) => `${v.toFixed(2)}x`],
  ...(procs.length ? [procTarget(1, '(one ConfigMap) 4 processes vs 1 process in put ops/s').with(2, -Infinity)] : []),
  ...(procs.length ? [procControl(SHARDS), procControl(1)] : []),
];
const report = [
  lines.join('\n'),
  '',
  ...targetTable(targets),
  '',
  memory
    ? `Memory of a fresh process caching the 2000-key bucket (${memory.keys} keys, every value decoded): heap and buffers +${memory.heapDeltaMiB.toFixed(1)} MiB, process RSS ${memory.rssMiB.toFixed(0)} MiB.`
    : 'Memory: measured only against the local API server.',
  ...bySize.map(
    (b) =>
      `Put p50 by size, ${b.shards} shard(s), ${b.small.count} puts per size in alternating rounds: 10 keys ${b.small.p50.toFixed(2)} ms (p99 ${b.small.p99.toFixed(2)}), 2000 keys ${b.large.p50.toFixed(2)} ms (p99 ${b.large.p99.toFixed(2)}).`,
  ),
  ...(evicting ? [evictLine(evicting)] : []),
  ...procs.map((p) => `Multi-process: ${procsLine(p)}`),
  ...elasticLines(elastic),
  `Buckets: ${JSON.stringify(extra)}`,
].join('\n');
console.log(report);
if (jsonOut)
  writeFileSync(
    jsonOut,
    JSON.stringify({ rows, targets: targets.map(([name, value]) => ({ name, value })), memory, procs, bySize, evicting, elastic, extra }, null, 2),
  );
await stopAfter();
