// Elastic buckets (issue 14; docs/FORMAT.md section 9): buckets created with default
// options start as one ConfigMap and split in two, online, each time a part passes the
// split threshold. Every figure here is compared with a baseline measured in the same run
// (interleaved rounds, medians), never with figures of another run:
//
//   size      put p50 at 10, 2,000 and 20,000 keys of 450 random bytes, default options
//   baseline  put p50 at 1,900 keys of 400 random bytes against the original library's algorithm
//   small     64-caller puts and cached list at 10 keys: default options against a bucket
//             created with maxBytes 1 MiB (one ConfigMap that never splits)
//   growth    every put's latency while a bucket grows from 0 to 2,000 keys (16 callers),
//             beside the time of one split, both seen from the API server's watch, and
//             beside the same puts into the grown bucket with no split under way
//   procs     4 processes writing one elastic bucket of ~2,000 keys (many parts) against 4
//             processes writing a bucket each (the control that shares nothing)
//   patch     the API server's time for a one-key patch against the object's size (what the
//             split threshold weighs), straight through the port
//
// runElastic(ctx, parts) runs the chosen parts; elasticLines() and elasticTargets() turn
// its result into report lines and rows of the target table (bench.mjs).
import { loadavg } from 'node:os';
import { createKV, LABEL_BUCKET, ANNOTATION_FORMAT } from '@k8s-kv/core';
import { countingApi, SPLIT_BYTES } from '@k8s-kv/core/testing';
import { BaselineBucket } from './baseline.mjs';
import { medianRun, procsLine, runWorkers } from './procs.mjs';
import { appValue, benchKey, measure, median, randomValue, sleep, summarize, withCallers } from './util.mjs';

/** The parts, in the order they run (`--elastic size,procs` runs some; PART_RUNS below runs them). */
export const ELASTIC_PARTS = ['size', 'baseline', 'small', 'growth', 'procs', 'patch'];

// Annotations of docs/FORMAT.md section 9.1.
const PART = 'k8s-kv.io/part';
const SEALED = 'k8s-kv.io/sealed';
const SPLIT_FROM = 'k8s-kv.io/split-from';

/** A bucket of the benchmark's app in the run's namespace; default options unless `options` says otherwise. */
const open = (ctx, bucket, options = {}) => createKV({ bucket, namespace: ctx.namespace, kubeConfig: ctx.kubeConfig, app: 'bench', ...options });

/** Deletes a bucket and everything it holds. */
async function teardown(ctx, bucket) {
  const kv = open(ctx, bucket, { cache: false });
  await kv.teardown();
  await kv.close();
}

// ------------------------------------------------------------------ the layout, as the server shows it

/** The bucket's objects (one LIST by its label): metadata only, or whole with `full`. */
async function objectsOf(ctx, bucket, full = false) {
  return (await ctx.api.list('ConfigMap', ctx.namespace, { labelSelector: `${LABEL_BUCKET}=${bucket}` }, { metadataOnly: !full })).items;
}

/** The objects holding a bucket's entries (its live parts; its head while it is one ConfigMap), and whether a split is under way. */
function layoutOf(objects) {
  const annotations = (o) => o.metadata.annotations ?? {};
  const parts = objects.filter((o) => annotations(o)[PART] !== undefined);
  const live = parts.filter((o) => annotations(o)[SPLIT_FROM] === undefined);
  return {
    holders: live.length > 0 ? live : objects.filter((o) => annotations(o)[PART] === undefined),
    parts: Math.max(1, live.length),
    sealed: objects.filter((o) => annotations(o)[SEALED] !== undefined).length,
    pending: parts.length - live.length,
  };
}

/** Waits until no split of the bucket is under way: no object sealed, no part pending (with `split-from`). */
async function settle(ctx, bucket, timeoutMs = 120_000) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const layout = layoutOf(await objectsOf(ctx, bucket));
    if (layout.sealed === 0 && layout.pending === 0) return layout;
    if (performance.now() > deadline)
      throw new Error(`bucket ${bucket}: a split is still under way after ${timeoutMs / 1000} s (${layout.sealed} sealed, ${layout.pending} pending)`);
    await sleep(200);
  }
}

/** Bytes of an object's entries, as the API server counts them (binaryData decoded, data as is). */
function entryBytes(object) {
  let bytes = 0;
  for (const value of Object.values(object.binaryData ?? {})) bytes += Buffer.byteLength(value, 'base64');
  for (const value of Object.values(object.data ?? {})) bytes += Buffer.byteLength(value);
  return bytes;
}

/** Keys of ~450 bytes a fill batch gives each part: half the split threshold. */
const KEYS_PER_PART = Math.max(8, Math.floor(SPLIT_BYTES / 2 / 450));

/**
 * Fills a fresh bucket with `count` keys (`benchKey(i)` holding `valueFor(i)`) in putMany
 * batches, and returns once no split is under way and no part is past the split
 * threshold, with the number of parts, their sizes and the time it took. A batch gives
 * each part about half a threshold of 450-byte values, so that parts split as the
 * bucket grows instead of overshooting it. A part left past the
 * threshold would split at its next write, inside the measurement: one key of each such
 * part is written again (the part then splits) until there is none.
 */
async function fill(ctx, bucket, count, valueFor) {
  const started = performance.now();
  await teardown(ctx, bucket);
  let writer = open(ctx, bucket, { cache: false });
  let parts = 1;
  for (let i = 0; i < count; ) {
    const size = Math.min(count - i, KEYS_PER_PART * parts, 4000);
    await writer.putMany(Array.from({ length: size }, (_, j) => [benchKey(i + j), valueFor(i + j)]));
    i += size;
    parts = layoutOf(await objectsOf(ctx, bucket)).parts;
  }
  for (let pass = 0; ; pass++) {
    await writer.close(); // waits for the splits it started
    await settle(ctx, bucket);
    const { holders } = layoutOf(await objectsOf(ctx, bucket, true));
    const sizes = holders.map(entryBytes).sort((a, b) => a - b);
    const over = holders.filter((o) => entryBytes(o) > SPLIT_BYTES);
    if (over.length === 0 || count <= 10) {
      const ms = performance.now() - started;
      console.error(
        `  filled ${bucket}: ${count} keys in ${(ms / 1000).toFixed(1)} s, ${holders.length} part(s) of ${(sizes[0] / 1024).toFixed(0)}-${(sizes.at(-1) / 1024).toFixed(0)} KiB`,
      );
      return { keys: count, parts: holders.length, minPartBytes: sizes[0], maxPartBytes: sizes.at(-1), bytes: sizes.reduce((a, b) => a + b, 0), fillMs: ms };
    }
    if (pass === 5) throw new Error(`bucket ${bucket}: ${over.length} part(s) stay past the split threshold`);
    writer = open(ctx, bucket, { cache: false });
    // The benchmark's keys are plain (letters, digits, '-'): their data key is the key itself.
    for (const object of over) {
      const key = Object.keys(object.binaryData ?? {}).find((k) => k.startsWith('key-'));
      if (key) await writer.put(key, valueFor(Number(key.slice(4))));
    }
  }
}

// ------------------------------------------------------------------ splits, as the API server's watch shows them

/**
 * Watches a bucket's objects and keeps every event with the time it arrived, from
 * before the first write; `splits()` turns them into the splits that happened. The API
 * server may end a watch at any time (it did, seconds into a run, while every event
 * carried a whole part): it is started again from the last resourceVersion seen, and
 * `restarts` counts that; `lost` is set if it could not be.
 */
async function watchBucket(ctx, bucket) {
  const labelSelector = `${LABEL_BUCKET}=${bucket}`;
  let { resourceVersion } = await ctx.api.list('ConfigMap', ctx.namespace, { labelSelector }, { metadataOnly: true });
  const events = [];
  const state = { restarts: 0, lost: undefined, stopped: false, handle: undefined };
  const start = async () => {
    state.handle = await ctx.api.watch('ConfigMap', ctx.namespace, {
      labelSelector,
      resourceVersion,
      onEvent: (event) => {
        resourceVersion = event.object.metadata.resourceVersion ?? resourceVersion;
        if (event.type === 'BOOKMARK') return;
        const { name, uid, annotations } = event.object.metadata;
        events.push({ t: performance.now(), type: event.type, name, uid, annotations: annotations ?? {} });
      },
      onClose: (error) => {
        if (state.stopped) return;
        if (error) {
          state.lost = error;
          return;
        }
        state.restarts++;
        start().catch((e) => {
          state.lost = e;
        });
      },
    });
  };
  await start();
  return {
    stop: () => {
      state.stopped = true;
      state.handle?.stop();
    },
    restarts: () => state.restarts,
    lost: () => state.lost,
    splits: () => splitsOf(events),
  };
}

/**
 * The splits in a bucket's watch events (docs/FORMAT.md section 9.4): each from the
 * event that first shows the object sealed, to its switch (the part deleted, or the
 * root's format set to 3) and to the activation of its two children (their
 * `split-from` removed), in ms. A split rolled back has no switch.
 */
function splitsOf(events) {
  const splits = new Map(); // uid of the object split -> its split
  const parentOf = new Map(); // uid of a child -> uid of the object it was copied from
  const activeAt = new Map(); // uid of a child -> when it was first seen without split-from
  for (const e of events) {
    const a = e.annotations;
    if (!splits.has(e.uid) && a[SEALED] !== undefined && e.type !== 'DELETED') splits.set(e.uid, { name: e.name, sealedAt: e.t, children: [] });
    const split = splits.get(e.uid);
    if (split && split.switchedAt === undefined && !split.rolledBack) {
      if (e.type === 'DELETED') split.switchedAt = e.t;
      else if (a[SEALED] === undefined) {
        if (a[ANNOTATION_FORMAT] === '3' && a[PART] === undefined) split.switchedAt = e.t;
        else split.rolledBack = true;
      }
    }
    const from = a[SPLIT_FROM];
    if (from !== undefined && e.type !== 'DELETED') {
      const parent = from.split('@')[0];
      if (!parentOf.has(e.uid)) splits.get(parent)?.children.push(e.uid);
      parentOf.set(e.uid, parent);
    } else if (parentOf.has(e.uid) && e.type === 'MODIFIED' && !activeAt.has(e.uid)) activeAt.set(e.uid, e.t);
  }
  return [...splits.values()].map((s) => {
    const active = s.children.map((uid) => activeAt.get(uid));
    const doneAt = s.switchedAt !== undefined && active.length === 2 && active.every((t) => t !== undefined) ? Math.max(...active) : undefined;
    return { name: s.name, sealedAt: s.sealedAt, switchedAt: s.switchedAt, doneAt, rolledBack: Boolean(s.rolledBack) };
  });
}

// ------------------------------------------------------------------ 1. put p50 by bucket size

/**
 * Put p50 at 10, 2,000 and 20,000 keys of 450 random bytes, default options, measured in
 * alternating rounds (10, 2000, 20000, 10, ...) on the same buckets, each filled first
 * and left with no split under way. Each put rewrites a key with a new value of the same
 * size, so that the parts keep their size. The stores run their caches (they read the
 * bucket first), as the table's rows do.
 */
async function bySize(ctx, rounds = 6, perRound = ctx.n(50)) {
  const counts = [10, ctx.n(2000), ctx.n(20000)];
  const valueSize = 450;
  const buckets = counts.map((count) => `bench-e-size-${count}`);
  const filled = [];
  for (const [s, count] of counts.entries()) filled.push(await fill(ctx, buckets[s], count, () => randomValue(valueSize)));
  const stores = buckets.map((bucket) => open(ctx, bucket));
  const keysOf = await Promise.all(stores.map((kv) => kv.keys())); // starts each cache
  const samples = counts.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (const [s, kv] of stores.entries()) {
      const keys = keysOf[s];
      for (let i = 0; i < perRound; i++) {
        const value = randomValue(valueSize);
        const t0 = performance.now();
        await kv.put(keys[((round * perRound + i) * 7919) % keys.length], value);
        samples[s].push(performance.now() - t0);
      }
    }
  }
  await Promise.all(stores.map((kv) => kv.close()));
  const after = [];
  for (const bucket of buckets) after.push((await settle(ctx, bucket)).parts);
  for (const bucket of buckets) await teardown(ctx, bucket);
  const sizes = counts.map((_, s) => ({ ...filled[s], partsAfter: after[s], put: summarize(samples[s]) }));
  const [small, ...large] = sizes;
  for (const size of large)
    console.error(
      `  put p50, default options, interleaved: ${small.keys} keys ${small.put.p50.toFixed(2)} ms, ${size.keys} keys (${size.parts} parts) ${size.put.p50.toFixed(2)} ms (${(size.put.p50 / small.put.p50).toFixed(2)}x)`,
    );
  return { valueSize, perSize: samples[0].length, sizes };
}

// ------------------------------------------------------------------ 2. against the original library's algorithm

/**
 * Put p50 at 1,900 keys of 400 random bytes (about the most the original library can
 * hold in its one ConfigMap): a default bucket against the baseline (bench/baseline.mjs),
 * in alternating rounds; fewer baseline puts per round, each costs a GET, a decode and an
 * encode of the whole ~1 MB bucket.
 */
async function versusBaseline(ctx, rounds = 6, perRound = ctx.n(50), perRoundBaseline = ctx.n(10)) {
  const count = 1900;
  const valueSize = 400;
  const bucket = 'bench-e-seed';
  const filled = await fill(ctx, bucket, count, () => randomValue(valueSize));
  const baseline = new BaselineBucket(ctx.api, ctx.namespace, 'bench-e-seed-baseline');
  await baseline.init();
  await baseline.putAll(Array.from({ length: count }, (_, i) => [benchKey(i), randomValue(valueSize)]));
  const kv = open(ctx, bucket);
  const keys = await kv.keys(); // starts the cache
  const samples = { ours: [], baseline: [] };
  const timed = async (list, op) => {
    const t0 = performance.now();
    await op();
    list.push(performance.now() - t0);
  };
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < perRound; i++) {
      const value = randomValue(valueSize);
      await timed(samples.ours, () => kv.put(keys[((round * perRound + i) * 7919) % keys.length], value));
    }
    for (let i = 0; i < perRoundBaseline; i++) {
      const value = randomValue(valueSize);
      await timed(samples.baseline, () => baseline.put(benchKey(((round * perRoundBaseline + i) * 7919) % count), value));
    }
  }
  await kv.close();
  await teardown(ctx, bucket);
  await ctx.api.delete(baseline.ref);
  const result = { ...filled, valueSize, ours: summarize(samples.ours), baseline: summarize(samples.baseline) };
  console.error(
    `  put p50 at ${count} keys of ${valueSize} random bytes: default options ${result.ours.p50.toFixed(2)} ms, baseline ${result.baseline.p50.toFixed(2)} ms (${(result.baseline.p50 / result.ours.p50).toFixed(1)}x faster)`,
  );
  return result;
}

// ------------------------------------------------------------------ 3. small buckets lose nothing

/**
 * 64-caller put throughput and cached list at 10 keys: a default bucket against one
 * created with maxBytes 1 MiB (one ConfigMap that never splits), in alternating rounds
 * (the order swapped every round), the median round of each kept. Both are the current
 * code (the previous release is compared separately); the table's 10-key rows are a
 * bucket like the second.
 */
async function smallBuckets(ctx, rounds = ctx.quick ? 4 : 8) {
  const variants = [
    { label: 'default options', bucket: 'bench-e-small', options: {} },
    { label: 'maxBytes 1 MiB', bucket: 'bench-e-small-1mib', options: { maxBytes: 1048576 } },
  ];
  const stores = [];
  for (const v of variants) {
    await teardown(ctx, v.bucket);
    const kv = open(ctx, v.bucket, v.options);
    await kv.putMany(Array.from({ length: 10 }, (_, i) => [benchKey(i), appValue(i, 450)]));
    await kv.keys(); // starts the cache
    stores.push(kv);
  }
  // Each kind in rounds of its own, an even number, each store first in half of them; the
  // lists (microseconds each) after a warm-up, and enough of them that a round lasts a while.
  const order = (round) => (round % 2 === 0 ? [0, 1] : [1, 0]);
  const put64 = variants.map(() => []);
  for (let round = 0; round < rounds; round++)
    for (const s of order(round)) put64[s].push(await measure(ctx.n(4000), (i) => stores[s].put(benchKey(i % 10), `c${i}`), 64));
  await sleep(200); // the watch events of the last puts
  for (const kv of stores) await measure(2000, () => kv.list('key-'));
  const list = variants.map(() => []);
  for (let round = 0; round < rounds; round++) for (const s of order(round)) list[s].push(await measure(ctx.n(20000), () => stores[s].list('key-')));
  await Promise.all(stores.map((kv) => kv.close()));
  for (const v of variants) await teardown(ctx, v.bucket);
  const medianOf = (runs) => ({ ops: median(runs.map((r) => r.ops)), p50: median(runs.map((r) => r.p50)), allOps: runs.map((r) => r.ops) });
  const result = variants.map((v, s) => ({ label: v.label, put64: medianOf(put64[s]), list: medianOf(list[s]) }));
  // The ratio: the median of each round's own ratio (the two measured back to back, on the
  // same state of the machine), steadier here than the ratio of the two medians.
  const ratio = (runs) => median(runs[0].map((r, i) => r.ops / runs[1][i].ops));
  const ratios = { put64: ratio(put64), list: ratio(list) };
  const [elastic, one] = result;
  console.error(
    `  10 keys, default vs maxBytes 1 MiB: 64-caller puts ${elastic.put64.ops.toFixed(0)} vs ${one.put64.ops.toFixed(0)} ops/s (${ratios.put64.toFixed(2)}x), ` +
      `cached list ${elastic.list.ops.toFixed(0)} vs ${one.list.ops.toFixed(0)} ops/s (${ratios.list.toFixed(2)}x)`,
  );
  return { rounds, variants: result, ratios };
}

// ------------------------------------------------------------------ 4. writes during splits

/**
 * A fresh default bucket grows from 0 to 2,000 keys of 450 random bytes, put by 16
 * concurrent callers of one store that only writes (no cache), every put timed. A watch
 * of the bucket's objects times each split (splitsOf). Puts that overlapped a split (ran
 * while some object was sealed) are also summarized apart, and the store's API calls are
 * counted (what the splits cost the writers beyond their patches: layout reads). The
 * baseline, measured right after in each round: the same callers put the same keys again
 * (values of the same size, so nothing splits) into the grown bucket - what a put costs at
 * this concurrency when no split is under way. Rounds (3; 1 with --quick) each grow a new
 * bucket; each figure is the median of the rounds'.
 */
async function writesDuringSplits(ctx, callers = 16, rounds = ctx.quick ? 1 : 3) {
  const count = ctx.n(2000);
  const valueSize = 450;
  const bucket = 'bench-e-grow';
  const results = [];
  for (let round = 0; round < rounds; round++) {
    await teardown(ctx, bucket);
    const watch = await watchBucket(ctx, bucket);
    const counting = countingApi(ctx.api);
    const kv = open(ctx, bucket, { api: counting.api });
    const puts = [];
    const started = performance.now();
    await withCallers(count, callers, async (i) => {
      const value = randomValue(valueSize);
      const start = performance.now();
      await kv.put(benchKey(i), value);
      puts.push({ start, end: performance.now() });
    });
    const ms = performance.now() - started;
    const calls = { ...counting.counts };
    await kv.close();
    const layout = await settle(ctx, bucket);
    await sleep(500); // the last events
    watch.stop();
    if (watch.lost()) console.error(`  (the watch failed during the run: ${watch.lost().message}; splits after it are not counted)`);
    const splits = watch.splits();
    const done = splits.filter((s) => s.switchedAt !== undefined);
    const overlapped = puts.filter((p) => splits.some((s) => p.start < (s.doneAt ?? s.switchedAt ?? Infinity) && p.end > s.sealedAt));
    // The baseline: the same puts into the grown bucket, no split under way.
    const again = open(ctx, bucket);
    const steady = await measure(count, (i) => again.put(benchKey(i), randomValue(valueSize)), callers);
    await again.close();
    const result = {
      ops: (count / ms) * 1000,
      parts: layout.parts,
      put: summarize(puts.map((p) => p.end - p.start)),
      overlapped: summarize(overlapped.map((p) => p.end - p.start)),
      steady,
      splits: done.length,
      rolledBack: splits.filter((s) => s.rolledBack).length,
      sealToSwitch: summarize(done.map((s) => s.switchedAt - s.sealedAt)),
      sealToActive: summarize(done.filter((s) => s.doneAt !== undefined).map((s) => s.doneAt - s.sealedAt)),
      calls,
      watchLost: watch.lost() ? String(watch.lost().message) : undefined,
    };
    console.error(
      `  round ${round + 1}: 0 -> ${count} keys, ${callers} callers: ${result.ops.toFixed(0)} puts/s, put p50 ${result.put.p50.toFixed(2)} ms, p99 ${result.put.p99.toFixed(2)} ms, max ${result.put.max.toFixed(1)} ms; ` +
        `${result.splits} splits into ${result.parts} parts, seal -> switch p50 ${result.sealToSwitch.p50?.toFixed(1)} ms (max ${result.sealToSwitch.max?.toFixed(1)}); ` +
        `the same puts with no split: p50 ${result.steady.p50.toFixed(2)} ms, p99 ${result.steady.p99.toFixed(2)} ms`,
    );
    results.push(result);
  }
  await teardown(ctx, bucket);
  /** The median over the rounds of the figure `pick` takes from a round. */
  const mid = (pick) => median(results.map(pick));
  const summary = (pick) => ({ p50: mid((r) => pick(r).p50), p99: mid((r) => pick(r).p99), max: mid((r) => pick(r).max), count: mid((r) => pick(r).count) });
  const calls = {};
  for (const method of new Set(results.flatMap((r) => Object.keys(r.calls)))) calls[method] = mid((r) => r.calls[method] ?? 0);
  return {
    keys: count,
    callers,
    valueSize,
    rounds,
    parts: mid((r) => r.parts),
    ops: mid((r) => r.ops),
    put: summary((r) => r.put),
    overlapped: summary((r) => r.overlapped),
    steady: { p50: mid((r) => r.steady.p50), p99: mid((r) => r.steady.p99) },
    /** What the splits add to the put p99, per round: p99 while growing less p99 with no split. */
    added: summarize(results.map((r) => r.put.p99 - r.steady.p99)),
    splits: mid((r) => r.splits),
    rolledBack: results.reduce((sum, r) => sum + r.rolledBack, 0),
    sealToSwitch: summary((r) => r.sealToSwitch),
    sealToActive: summary((r) => r.sealToActive),
    calls,
    watchLost: results.find((r) => r.watchLost)?.watchLost,
  };
}

// ------------------------------------------------------------------ 5. several processes, one elastic bucket

/**
 * Four writer processes (16 callers each) rewriting the keys of one default bucket of
 * ~2,000 keys (many parts, filled before the clock starts), against four processes each
 * rewriting the same share of keys in a bucket of its own filled the same way (the
 * control: nothing shared). Values keep their size, so no part splits during a run.
 * Alternating rounds (5: one kind varied by 15% between the rounds of one run), the
 * median of each kind kept; after each run every key a process wrote must hold its last
 * value (`lost` counts those that do not). `options`: the writers' store options
 * (default: none, default options), for experiments.
 */
export async function severalProcesses(ctx, { processes = 4, concurrency = 16, options = undefined } = {}) {
  const prefill = ctx.n(2000);
  const perProcess = Math.round(ctx.n(4800) / processes);
  const valueSize = 450;
  const rounds = ctx.quick ? 1 : 5;
  const shared = 'bench-e-procs';
  const own = Array.from({ length: processes }, (_, id) => `bench-e-procs-own-${id}`);
  const filled = {};
  for (const bucket of [shared, ...own]) filled[bucket] = await fill(ctx, bucket, prefill, () => randomValue(valueSize));
  const runs = { shared: [], separate: [] };
  for (let round = 0; round < rounds; round++) {
    for (const kind of round % 2 === 0 ? ['shared', 'separate'] : ['separate', 'shared']) {
      const separate = kind === 'separate';
      const tasks = own.map((bucket, id) => ({
        mode: 'overwrite',
        bucket: separate ? bucket : shared,
        id,
        processes,
        keysPerProcess: prefill / processes,
        count: perProcess,
        concurrency,
        round,
        valueSize,
        options,
      }));
      const run = await runWorkers(ctx, tasks);
      const lost = await lostOverwrites(ctx, tasks);
      const partsAfter = (await settle(ctx, separate ? own[0] : shared)).parts;
      const p = {
        processes,
        separate,
        layout: `elastic, ${prefill} keys in ${filled[separate ? own[0] : shared].parts} parts${partsAfter === filled[separate ? own[0] : shared].parts ? '' : ` (${partsAfter} after the run)`}`,
        writes: processes * perProcess,
        ops: (processes * perProcess) / (run.ms / 1000),
        lost,
        patches: run.patches,
        attemptsPerPatch: run.attemptsPerPatch,
        cores: run.cores,
      };
      console.error(`  ${procsLine(p)}`);
      runs[kind].push(p);
    }
  }
  for (const bucket of [shared, ...own]) await teardown(ctx, bucket);
  return { prefill, parts: filled[shared].parts, shared: medianRun(runs.shared), separate: medianRun(runs.separate) };
}

/** Keys whose value is not the last one a worker wrote (worker.mjs mode 'overwrite'), over every task's bucket. */
async function lostOverwrites(ctx, tasks) {
  let lost = 0;
  for (const bucket of new Set(tasks.map((t) => t.bucket))) {
    const reader = open(ctx, bucket, { cache: false });
    const values = await reader.list();
    await reader.close();
    for (const t of tasks.filter((task) => task.bucket === bucket)) {
      for (let k = 0; k < Math.min(t.keysPerProcess, t.count); k++) {
        const last = k + t.keysPerProcess * Math.floor((t.count - 1 - k) / t.keysPerProcess);
        const value = values.get(benchKey(k * t.processes + t.id));
        const marker = `r${t.round}-p${t.id}-${last}:`;
        if (!value || Buffer.from(value.subarray(0, marker.length)).toString('latin1') !== marker) lost++;
      }
    }
  }
  return lost;
}

// ------------------------------------------------------------------ 6. the API server's cost of a patch against the object's size

/**
 * What the split threshold weighs: one-key patches sent straight through the port (no
 * k8s-kv code above it) to ConfigMaps of 10 to 256 entries of 470 random bytes (5 to
 * 120 KiB), in alternating rounds: a JSON patch (what k8s-kv sends: its `test`s guard
 * ownership and the seal) and a strategic merge patch (what it sent before elastic
 * buckets), each answered metadata-only (a process that only writes) and whole (a
 * process whose cache runs). p50 in ms per size and kind.
 */
async function patchCost(ctx, rounds = ctx.quick ? 3 : 6, perRound = ctx.quick ? 8 : 15) {
  const counts = [10, 32, 64, 128, 256];
  const refs = [];
  for (const count of counts) {
    const ref = { kind: 'ConfigMap', namespace: ctx.namespace, name: `bench-e-patch-${count}` };
    await ctx.api.delete(ref).catch(() => undefined);
    const binaryData = Object.fromEntries(Array.from({ length: count }, (_, i) => [benchKey(i), randomValue(470).toString('base64')]));
    await ctx.api.create('ConfigMap', ctx.namespace, { metadata: { name: ref.name }, binaryData });
    refs.push(ref);
  }
  const clear = { op: 'add', path: '/metadata/managedFields', value: [{}] };
  const kinds = {
    'JSON patch, metadata answer': (ref) =>
      ctx.api.jsonPatch(ref, [{ op: 'add', path: '/binaryData/key-00001', value: randomValue(470).toString('base64') }, clear], { metadataOnly: true }),
    'JSON patch, whole answer': (ref) =>
      ctx.api.jsonPatch(ref, [{ op: 'add', path: '/binaryData/key-00001', value: randomValue(470).toString('base64') }, clear]),
    'strategic merge, metadata answer': (ref) =>
      ctx.api.strategicMergePatch(
        ref,
        { metadata: { managedFields: [{}] }, binaryData: { 'key-00001': randomValue(470).toString('base64') } },
        { metadataOnly: true },
      ),
    'strategic merge, whole answer': (ref) =>
      ctx.api.strategicMergePatch(ref, { metadata: { managedFields: [{}] }, binaryData: { 'key-00001': randomValue(470).toString('base64') } }),
  };
  const samples = Object.fromEntries(Object.keys(kinds).map((kind) => [kind, counts.map(() => [])]));
  for (let round = 0; round < rounds; round++) {
    for (const [kind, patch] of Object.entries(kinds)) {
      for (const [s, ref] of refs.entries()) {
        for (let i = 0; i < perRound; i++) {
          const t0 = performance.now();
          await patch(ref);
          samples[kind][s].push(performance.now() - t0);
        }
      }
    }
  }
  for (const ref of refs) await ctx.api.delete(ref);
  const rows = Object.entries(samples).map(([kind, perSize]) => ({ kind, p50: perSize.map((list) => summarize(list).p50) }));
  for (const row of rows) console.error(`  ${row.kind.padEnd(34)} ${row.p50.map((v, s) => `${counts[s]}: ${v.toFixed(2)}`).join(', ')} ms`);
  return { counts, kiB: counts.map((count) => (count * 470) / 1024), rows };
}

// ------------------------------------------------------------------ run and report

/** The parts by name, in the order they run: what the run prints before each, and the function. */
const PART_RUNS = {
  size: { title: 'put p50 by bucket size, interleaved rounds', run: (ctx) => bySize(ctx) },
  baseline: { title: 'put p50 at 1,900 keys of 400 random bytes against the baseline, interleaved rounds', run: (ctx) => versusBaseline(ctx) },
  small: { title: '10 keys: default options against maxBytes 1 MiB, interleaved rounds', run: (ctx) => smallBuckets(ctx) },
  growth: { title: 'puts while the bucket grows and splits', run: (ctx) => writesDuringSplits(ctx) },
  procs: { title: '4 processes writing one bucket against 4 processes writing a bucket each, alternating rounds', run: (ctx) => severalProcesses(ctx) },
  patch: { title: "the API server's time for a one-key patch against the object's size, alternating rounds", run: (ctx) => patchCost(ctx) },
};

/** Runs the chosen parts of the elastic benchmark (all by default); `procs` needs the local API server (its processes load its kubeconfig). */
export async function runElastic(ctx, parts = ELASTIC_PARTS) {
  const result = { load: { before: loadavg() } };
  for (const [name, { title, run }] of Object.entries(PART_RUNS)) {
    if (!parts.includes(name) || (name === 'procs' && !ctx.kubeconfigFile)) continue;
    console.error(`\nelastic buckets (default options): ${title}`);
    result[name] = await run(ctx);
  }
  result.load.after = loadavg();
  return result;
}

const ms = (v) => (v === undefined ? '?' : `${v.toFixed(2)} ms`);
const x = (v, d = 2) => `${v.toFixed(d)}x`;

/** The report's lines for a result of {@link runElastic}. */
export function elasticLines(r) {
  const lines = [
    `Elastic buckets: load average (1, 5, 15 min) ${r.load.before.map((l) => l.toFixed(1)).join(', ')} at the start, ${r.load.after.map((l) => l.toFixed(1)).join(', ')} at the end.`,
  ];
  if (r.size) {
    const [small, ...large] = r.size.sizes;
    const bucket = (s) =>
      `${s.keys} keys (${s.parts} part${s.parts > 1 ? 's' : ''}${s.partsAfter !== s.parts ? `, ${s.partsAfter} after` : ''}, ${(s.bytes / 1048576).toFixed(2)} MiB, filled in ${(s.fillMs / 1000).toFixed(0)} s)`;
    lines.push(
      `Elastic put by size (${r.size.valueSize} random bytes, ${r.size.perSize} puts per size in alternating rounds): ` +
        r.size.sizes.map((s) => `${bucket(s)} p50 ${ms(s.put.p50)}, p99 ${ms(s.put.p99)}`).join('; ') +
        `; ratios ${large.map((s) => `${s.keys}/${small.keys} ${x(s.put.p50 / small.put.p50)}`).join(', ')}.`,
    );
  }
  if (r.baseline) {
    const b = r.baseline;
    lines.push(
      `Elastic put at ${b.keys} keys of ${b.valueSize} random bytes (${b.parts} parts) against the baseline (one ConfigMap, ${(b.baseline.count / b.ours.count).toFixed(2)} puts per elastic put): ` +
        `p50 ${ms(b.ours.p50)} vs ${ms(b.baseline.p50)} (${x(b.baseline.p50 / b.ours.p50, 1)} faster), p99 ${ms(b.ours.p99)} vs ${ms(b.baseline.p99)}.`,
    );
  }
  if (r.small) {
    const [e, one] = r.small.variants;
    const rounds = (m) => m.allOps.map((o) => o.toFixed(0)).join(', ');
    lines.push(
      `Elastic 10 keys, default options vs maxBytes 1 MiB (one ConfigMap), medians of ${r.small.rounds} alternating rounds (ratio: median of the rounds' ratios): ` +
        `64-caller puts ${e.put64.ops.toFixed(0)} vs ${one.put64.ops.toFixed(0)} ops/s (${x(r.small.ratios.put64)}; rounds ${rounds(e.put64)} vs ${rounds(one.put64)}), ` +
        `cached list ${e.list.ops.toFixed(0)} vs ${one.list.ops.toFixed(0)} ops/s (${x(r.small.ratios.list)}; p50 ${e.list.p50.toFixed(3)} vs ${one.list.p50.toFixed(3)} ms).`,
    );
  }
  if (r.growth) {
    const g = r.growth;
    lines.push(
      `Elastic growth 0 -> ${g.keys} keys of ${g.valueSize} random bytes, ${g.callers} callers, medians of ${g.rounds} round(s), ${g.ops.toFixed(0)} puts/s: put p50 ${ms(g.put.p50)}, p99 ${ms(g.put.p99)}, max ${ms(g.put.max)}; ` +
        `${g.overlapped.count} puts overlapped a split: p50 ${ms(g.overlapped.p50)}, p99 ${ms(g.overlapped.p99)}; ` +
        `the same puts into the grown bucket, no split under way: p50 ${ms(g.steady.p50)}, p99 ${ms(g.steady.p99)} (the splits added ${ms(g.added.p50)} to the p99). ` +
        `${g.splits} splits into ${g.parts} parts${g.rolledBack ? ` (${g.rolledBack} rolled back)` : ''}${g.watchLost ? ` (the watch failed, later splits not seen: ${g.watchLost})` : ''}, one split (seal -> switch, from the watch) p50 ${ms(g.sealToSwitch.p50)}, max ${ms(g.sealToSwitch.max)}; ` +
        `seal -> both children active p50 ${ms(g.sealToActive.p50)}, max ${ms(g.sealToActive.max)}. ` +
        `The store's API calls: ${Object.entries(g.calls)
          .map(([method, count]) => `${count} ${method}`)
          .join(', ')}.`,
    );
  }
  if (r.procs) {
    for (const p of [r.procs.shared, r.procs.separate]) lines.push(`Elastic multi-process: ${procsLine(p)}`);
  }
  if (r.patch) {
    lines.push(
      `One-key patch p50 through the port against the object's size (${r.patch.counts.map((c, s) => `${c} entries = ${r.patch.kiB[s].toFixed(0)} KiB`).join(', ')}): ` +
        r.patch.rows.map((row) => `${row.kind} ${row.p50.map((v) => v.toFixed(2)).join(' / ')} ms`).join('; ') +
        '.',
    );
  }
  return lines;
}

/**
 * Rows of the target table (bench.mjs `targetTable`: [name, value, limit, show]; a positive
 * limit is a floor, a negative one a ceiling, a function decides) for a result of {@link runElastic}.
 */
export function elasticTargets(r) {
  const rows = [];
  if (r.size) {
    const [small, mid, large] = r.size.sizes;
    rows.push([
      `put p50 at ${mid.keys} keys <= 1.3x put p50 at ${small.keys} keys (default options, interleaved)`,
      mid.put.p50 / small.put.p50,
      -1.3,
      (v) => `${x(v)} (${ms(mid.put.p50)} vs ${ms(small.put.p50)}; ${mid.parts} parts)`,
    ]);
    rows.push([
      `put p50 at ${large.keys} keys <= 1.5x put p50 at ${small.keys} keys (default options, interleaved)`,
      large.put.p50 / small.put.p50,
      -1.5,
      (v) => `${x(v)} (${ms(large.put.p50)} vs ${ms(small.put.p50)}; ${large.parts} parts)`,
    ]);
  }
  if (r.baseline) {
    const b = r.baseline;
    rows.push([
      `put p50 at ${b.keys} keys of ${b.valueSize} random bytes >= 10x faster than the baseline (default options)`,
      b.baseline.p50 / b.ours.p50,
      10,
      (v) => `${x(v, 1)} (${ms(b.ours.p50)} vs ${ms(b.baseline.p50)})`,
    ]);
  }
  if (r.small) {
    const [e, one] = r.small.variants;
    rows.push([
      '64-caller put ops/s at 10 keys, default options >= 0.9x a bucket with maxBytes 1 MiB',
      r.small.ratios.put64,
      0.9,
      (v) => `${x(v)} (${e.put64.ops.toFixed(0)} vs ${one.put64.ops.toFixed(0)})`,
    ]);
    rows.push([
      'cached list ops/s at 10 keys, default options >= 0.9x a bucket with maxBytes 1 MiB',
      r.small.ratios.list,
      0.9,
      (v) => `${x(v)} (${e.list.ops.toFixed(0)} vs ${one.list.ops.toFixed(0)})`,
    ]);
  }
  if (r.growth) {
    const g = r.growth;
    rows.push([
      `put p99 while a bucket grows to ${g.keys} keys (${g.callers} callers) < the time of one split (seal -> switch, p50)`,
      g.put.p99 / g.sealToSwitch.p50,
      -1,
      () => `${ms(g.put.p99)} vs ${ms(g.sealToSwitch.p50)} (max put ${ms(g.put.max)}; with no split the p99 is ${ms(g.steady.p99)})`,
    ]);
    rows.push([
      `what the splits add to the put p99 while a bucket grows (p99 less the p99 of the same puts with no split) < the time of one split`,
      g.added.p50 / g.sealToSwitch.p50,
      -1,
      () => `${ms(g.added.p50)} vs ${ms(g.sealToSwitch.p50)} (${ms(g.put.p99)} less ${ms(g.steady.p99)})`,
    ]);
  }
  if (r.procs) {
    const { shared, separate } = r.procs;
    rows.push([
      `4 processes writing one elastic bucket (${r.procs.parts} parts) >= 0.95x 4 processes writing a bucket each`,
      shared.ops / separate.ops,
      0.95,
      (v) => `${x(v)} (${shared.ops.toFixed(0)} vs ${separate.ops.toFixed(0)} puts/s)`,
    ]);
    if (shared.attemptsPerPatch !== undefined)
      rows.push([
        'server attempts per patch, 4 processes writing one elastic bucket <= 1.1',
        shared.attemptsPerPatch,
        -1.1,
        (v) => `${v.toFixed(2)} (control: ${separate.attemptsPerPatch?.toFixed(2)})`,
      ]);
    rows.push([
      'nothing lost, 4 processes writing one elastic bucket (every key holds its last acknowledged value)',
      shared.lost + separate.lost,
      (v) => v === 0,
      (v) => `${v} lost`,
    ]);
  }
  return rows;
}

/** The parts `--elastic` names (`--elastic size,growth`), or all of them. */
export function elasticParts(value) {
  if (!value || value.startsWith('--')) return ELASTIC_PARTS;
  const parts = value.split(',');
  const unknown = parts.filter((p) => !ELASTIC_PARTS.includes(p));
  if (unknown.length > 0) throw new Error(`--elastic: unknown part(s) ${unknown.join(', ')}; the parts are ${ELASTIC_PARTS.join(', ')}`);
  return parts;
}
