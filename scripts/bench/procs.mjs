// Several OS processes writing: start worker.mjs processes, start their clocks together,
// and measure the run from outside (wall time, CPU of the writers and of the API server,
// the API server's write attempts per patch).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { serverCpuMs, serverWriteCounts } from './server.mjs';

const WORKER = fileURLToPath(new URL('./worker.mjs', import.meta.url));

/**
 * Starts a worker.mjs process on `task`; `ready` once it is ready to write, `done` with its last line (JSON).
 * @param {{ kubeconfigFile?: string; namespace: string }} ctx
 * @param {Record<string, unknown>} task
 * @param {{ execArgv?: string[]; stdin?: 'pipe' | 'ignore' }} [options]
 */
export function startWorker(ctx, task, { execArgv = [], stdin = 'pipe' } = {}) {
  const child = spawn(process.execPath, [...execArgv, WORKER], {
    env: { ...process.env, K8S_KV_BENCH_WORKER: JSON.stringify({ kubeconfig: ctx.kubeconfigFile, namespace: ctx.namespace, ...task }) },
    stdio: [stdin, 'pipe', 'inherit'],
  });
  let out = '';
  const ready = new Promise((resolve) =>
    child.stdout?.on('data', (d) => {
      out += d;
      if (out.includes('ready\n')) resolve(undefined);
    }),
  );
  const done = new Promise((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.split('\n').filter(Boolean).at(-1))) : reject(new Error(`bench worker exit ${code}`)))),
  );
  return { child, ready, done };
}

/**
 * Runs one writer process per task, all clocks started at once once every one is ready
 * (connected, layout known). Returns the wall time, each worker's result, the CPU the
 * writers and the API server (with its etcd) used in cores busy, and the server's
 * ConfigMap patches and etcd update attempts per patch (undefined for another cluster).
 */
export async function runWorkers(ctx, tasks) {
  const workers = tasks.map((task) => startWorker(ctx, task));
  await Promise.all(workers.map((w) => w.ready));
  const writesBefore = await serverWriteCounts(ctx);
  const serverBefore = serverCpuMs(ctx);
  const started = performance.now();
  for (const w of workers) w.child.stdin?.end('go\n');
  const results = await Promise.all(workers.map((w) => w.done));
  const ms = performance.now() - started;
  const serverMs = serverCpuMs(ctx) - serverBefore;
  const writesAfter = await serverWriteCounts(ctx);
  const patches = writesAfter && writesBefore ? writesAfter.patches - writesBefore.patches : undefined;
  const attemptsPerPatch = patches ? (writesAfter.attempts - writesBefore.attempts) / patches : undefined;
  const clientMs = results.reduce((sum, r) => sum + r.cpuMs, 0);
  const cores = { clients: clientMs / ms, server: Number.isNaN(serverMs) ? undefined : serverMs / ms };
  return { ms, results, patches, attemptsPerPatch, cores };
}

/** The run of median throughput among runs of the same kind; `lost` and `allOps` cover them all. */
export function medianRun(runs) {
  const sorted = [...runs].sort((a, b) => a.ops - b.ops);
  return { ...sorted[Math.floor((sorted.length - 1) / 2)], lost: runs.reduce((sum, r) => sum + r.lost, 0), allOps: runs.map((r) => r.ops) };
}

/** One multi-process measurement, as a line of the report. */
export function procsLine(p) {
  const who = p.separate ? `${p.processes} processes into ${p.processes} separate buckets` : `${p.processes} process(es)`;
  const layout = p.layout ?? `${p.shards} shard(s)`;
  const conflicts = p.patches ? `; ${p.patches} patches, ${p.attemptsPerPatch.toFixed(2)} server attempts per patch` : '';
  const rounds = p.allOps?.length > 1 ? ` (median of ${p.allOps.map((o) => o.toFixed(0)).join(', ')})` : '';
  return `${who}, ${layout}, ${p.writes} puts, ${p.ops.toFixed(0)} puts/s${rounds}, ${p.lost} lost; cores busy: writers ${p.cores.clients.toFixed(2)}, API server ${p.cores.server?.toFixed(2) ?? '?'}${conflicts}.`;
}
