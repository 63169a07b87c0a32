// The local test API server as the benchmark observes it: its process (CPU time, pinning)
// and its /metrics (write attempts). `ctx` is the run's context (bench.mjs): `kubeconfigFile`
// is set only for the local server; against another cluster these answer "unknown".
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';

/** The local API server's process id (from the state file the cluster script writes). */
export function serverPid(ctx) {
  return JSON.parse(readFileSync(join(dirname(ctx.kubeconfigFile), 'state.json'), 'utf8')).pid;
}

/**
 * `--pin`: the local API server (and its etcd) on the first half of the CPUs (CPU 0 on
 * two), this process and the writers it starts on the others, as when the server runs on
 * nodes of its own; undone on exit.
 */
export function pinCpus(ctx) {
  const cpus = availableParallelism();
  if (!ctx.kubeconfigFile || cpus < 2) throw new Error('--pin needs the local API server and at least 2 CPUs');
  const split = Math.floor(cpus / 2);
  const range = (from, to) => (from === to ? String(from) : `${from}-${to}`);
  const pid = String(serverPid(ctx));
  execFileSync('taskset', ['-a', '-p', '-c', range(0, split - 1), pid], { stdio: 'ignore' });
  process.on('exit', () => execFileSync('taskset', ['-a', '-p', '-c', range(0, cpus - 1), pid], { stdio: 'ignore' }));
  execFileSync('taskset', ['-a', '-p', '-c', range(split, cpus - 1), String(process.pid)], { stdio: 'ignore' });
  console.error(`[bench] pinned: API server on CPU ${range(0, split - 1)}, benchmark and writers on CPU ${range(split, cpus - 1)}`);
}

/** CPU time (ms) the local test API server process has used so far; NaN when unknown (another cluster). */
export function serverCpuMs(ctx) {
  try {
    const fields = readFileSync(`/proc/${serverPid(ctx)}/stat`, 'utf8')
      .split(') ')[1]
      .split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, in 10 ms clock ticks
  } catch {
    return Number.NaN;
  }
}

/**
 * The local API server's count of ConfigMap PATCH requests and of etcd update
 * attempts (its /metrics): the API server applies a patch again, and tries etcd
 * again, each time another write of the same object got in first, so attempts
 * per patch measure server-side conflicts. Undefined for another cluster.
 */
export async function serverWriteCounts(ctx) {
  if (!ctx.kubeconfigFile) return undefined;
  const cluster = ctx.kubeConfig.getCurrentCluster();
  const token = ctx.kubeConfig.getCurrentUser()?.token;
  if (!cluster?.caData || !token) return undefined;
  const text = await new Promise((resolve) => {
    https
      .get(`${cluster.server}/metrics`, { ca: Buffer.from(cluster.caData, 'base64'), headers: { authorization: `Bearer ${token}` } }, (res) => {
        let body = '';
        res
          .setEncoding('utf8')
          .on('data', (d) => (body += d))
          .on('end', () => resolve(res.statusCode === 200 ? body : ''));
      })
      .on('error', () => resolve(''));
  });
  const sum = (pattern) =>
    text
      .split('\n')
      .filter((line) => pattern.test(line))
      .reduce((total, line) => total + Number(line.split(' ').at(-1)), 0);
  return {
    patches: sum(/^apiserver_request_total\{.*resource="configmaps".*verb="PATCH"/),
    attempts: sum(/^etcd_requests_total\{group="",operation="update",resource="configmaps"\}/),
  };
}
