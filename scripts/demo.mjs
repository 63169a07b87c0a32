#!/usr/bin/env node
// The main job, end to end: a k8s-kv bucket in a real Kubernetes API server.
//
//   ./dev demo                    against the local test API server (test/cluster), built and
//                                 started if it is not running; cleans up afterwards
//   ./dev demo --keep             leaves the buckets and the local API server running, and
//                                 prints how to look at them (KUBECONFIG, the CLI, kubectl)
//   ./dev demo --current-context  against the current kube context instead (KUBECONFIG or
//                                 ~/.kube/config): it writes the buckets "k8s-kv-demo" and
//                                 "k8s-kv-demo-large" there, so only when you ask
//
// Everything it writes lives in the buckets "k8s-kv-demo" and "k8s-kv-demo-large" (app
// "k8s-kv-demo"), which a run deletes first and, without --keep, last.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createKV, KVError, loadKubeConfig } from '@k8s-kv/core';
import { ensureCluster, stopCluster } from './cluster.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'packages', 'core', 'bin', 'k8s-kv.mjs');
const USAGE = 'usage: ./dev demo [--keep] [--current-context]';
const args = process.argv.slice(2);
for (const arg of args) {
  if (arg === '--help' || arg === '-h') {
    console.log(USAGE);
    process.exit(0);
  }
  if (arg !== '--keep' && arg !== '--current-context') {
    console.error(`demo: unknown option ${arg}\n${USAGE}`);
    process.exit(2);
  }
}
const keep = args.includes('--keep');
const useCurrentContext = args.includes('--current-context');

const step = (text) => console.log(`\n== ${text}`);
const decoder = new TextDecoder();

async function reachable(kubeConfig) {
  const probe = createKV({ bucket: 'k8s-kv-demo-probe', kubeConfig, cache: false, retry: { maxElapsedMs: 0 } });
  try {
    await probe.get('x');
    return true;
  } catch (error) {
    // Reachable but refusing (RBAC) still counts: the demo will show the typed error.
    return error instanceof KVError && error.code !== 'KV_UNAVAILABLE';
  } finally {
    await probe.close();
  }
}

/** The cluster to use: the local test API server unless --current-context. */
async function chooseCluster() {
  if (useCurrentContext) {
    const kubeConfig = loadKubeConfig();
    const where = `the current kube context "${kubeConfig.getCurrentContext()}" (${kubeConfig.getCurrentCluster()?.server})`;
    if (!(await reachable(kubeConfig))) {
      console.error(`demo: ${where} does not answer. Run ./dev demo without --current-context to use a local API server.`);
      process.exit(1);
    }
    console.log(`Using ${where}, as --current-context asked.`);
    return { kubeConfig, kubeconfigFile: process.env.KUBECONFIG || undefined, local: false, stop: async () => {} };
  }
  console.log('Using the local test API server (test/cluster; --current-context uses your kube context instead).');
  const info = await ensureCluster({ log: (m) => console.log(`  [cluster] ${m}`) });
  console.log(
    info.started
      ? `Started the local API server at ${info.server}${info.built ? ` (built in ${(info.buildMs / 1000).toFixed(0)} s)` : ''}.`
      : `Reusing the local API server already running at ${info.server} (pid ${info.pid}).`,
  );
  const kubeConfig = loadKubeConfig(info.kubeconfig);
  return {
    kubeConfig,
    kubeconfigFile: info.kubeconfig,
    local: true,
    // Stop only what this run started, and only when the state is not kept.
    stop: async () => {
      if (info.started && !keep) await stopCluster({ log: () => {} });
    },
  };
}

/** Runs the k8s-kv CLI as a user would, and prints the line and its output. */
function showCli(line, env) {
  console.log(`$ ./dev k8s-kv ${line.join(' ')}`);
  const run = spawnSync(process.execPath, [CLI, ...line], { env: { ...process.env, ...env }, encoding: 'utf8' });
  const output = `${run.stdout}${run.stderr}`.trimEnd();
  if (output) console.log(output.replace(/^/gm, '  '));
}

const { kubeConfig, kubeconfigFile, local, stop } = await chooseCluster();
const podA = createKV({ bucket: 'k8s-kv-demo', app: 'k8s-kv-demo', kubeConfig });
const podB = createKV({ bucket: 'k8s-kv-demo', app: 'k8s-kv-demo', kubeConfig });
const big = createKV({ bucket: 'k8s-kv-demo-large', app: 'k8s-kv-demo', kubeConfig });
try {
  step(`Bucket "${podA.bucket}" in namespace "${podA.namespace}"`);
  await podA.teardown(); // start clean if an earlier run was interrupted

  step('put / get: any string is a key, values are text or bytes');
  await podA.put('greeting', 'hello from k8s-kv');
  await podA.put('users/42/profile', JSON.stringify({ name: 'Ada', plan: 'pro' }));
  await podA.put('emoji 🙂 key', new Uint8Array([0, 1, 2, 254, 255]));
  await podA.put('session:abc', 'expires soon', { ttl: 1500 });
  console.log('greeting          =', await podA.getText('greeting'));
  console.log('users/42/profile  =', await podA.getText('users/42/profile'));
  console.log('emoji 🙂 key      =', await podA.get('emoji 🙂 key'));
  console.log('keys              =', await podA.keys());

  step('watch: pod B sees what pod A writes');
  const events = [];
  const unwatch = await podB.watch((event) => events.push(`${event.type} ${event.key}`));
  await podA.put('users/7/profile', JSON.stringify({ name: 'Grace' }));
  await podA.delete('greeting');
  await new Promise((r) => setTimeout(r, 500));
  console.log('events seen by B  =', events);
  unwatch();

  step('update: two pods increment one counter 100 times each, concurrently');
  const increment = (v) => String(Number(v ? decoder.decode(v) : '0') + 1);
  const started = Date.now();
  await Promise.all(
    [podA, podB].map(async (pod) => {
      for (let i = 0; i < 100; i++) await pod.update('counter', increment);
    }),
  );
  const elapsed = Date.now() - started;
  // Read it straight from the API server: pod A's watch cache may not have B's last increment yet.
  const fresh = createKV({ bucket: podA.bucket, app: 'k8s-kv-demo', kubeConfig, cache: false });
  console.log(`counter           = ${await fresh.getText('counter')} (expected 200) in ${elapsed} ms`);
  await fresh.close();

  step('batch: 500 keys in one atomic patch, read back in one call');
  await podA.putMany(Array.from({ length: 500 }, (_, i) => ({ key: `batch/${String(i).padStart(3, '0')}`, value: `value ${i}` })));
  const some = await podA.getMany(['batch/000', 'batch/499', 'batch/500']);
  console.log(
    'getMany (pod A)   =',
    some.map((v) => v && decoder.decode(v)),
  );
  // Pod B reads from its watch cache: it sees A's batch once the watch delivers it (milliseconds).
  await new Promise((r) => setTimeout(r, 200));
  console.log('keys under batch/ (pod B) =', (await podB.keys('batch/')).length);
  console.log('stats             =', await podA.stats());

  step('TTL: the session key expires');
  await new Promise((r) => setTimeout(r, 1600));
  console.log('session:abc       =', await podA.getText('session:abc'));

  step('typed errors: a value over 1 MiB is refused before any API call');
  try {
    await podA.put(
      'too-big',
      new Uint8Array(1_100_000).map(() => Math.random() * 256),
    );
  } catch (error) {
    console.log(`${error.code}: ${error.message}`);
  }

  step('a growing bucket: 2000 keys, default options; it splits into more ConfigMaps as it grows, so a put stays cheap');
  await big.teardown();
  await big.putMany(Array.from({ length: 10 }, (_, i) => [`item/${i}`, randomBytes(200).toString('hex')]));
  await big.keys(); // the cache is running
  const small = [];
  for (let i = 0; i < 50; i++) {
    const t0 = performance.now();
    await big.put(`item/${i % 10}`, `${i}:${randomBytes(200).toString('hex')}`);
    small.push(performance.now() - t0);
  }
  for (let i = 0; i < 2000; i += 100) {
    await big.putMany(Array.from({ length: 100 }, (_, j) => [`item/${i + j}`, `${i + j}:${randomBytes(200).toString('hex')}`]));
  }
  const times = [];
  for (let i = 0; i < 50; i++) {
    const t0 = performance.now();
    await big.put(`item/${(i * 37) % 2000}`, `changed ${i}:${randomBytes(200).toString('hex')}`);
    times.push(performance.now() - t0);
  }
  const p50 = (list) => list.sort((a, b) => a - b)[Math.floor(list.length / 2)];
  const { keys, shards, bytes, limitBytes, layout } = await big.stats();
  console.log(`stats             = ${keys} keys, ${bytes} bytes in ${shards} ConfigMaps (layout ${layout}, limit ${limitBytes} bytes)`);
  console.log(`put p50           = ${p50(times).toFixed(1)} ms at 2000 keys, ${p50(small).toFixed(1)} ms at 10 keys (50 puts each)`);
  if (!keep) await big.teardown();

  const env = kubeconfigFile ? { KUBECONFIG: kubeconfigFile } : {};
  const ns = podA.namespace;
  step('the k8s-kv CLI reads the same bucket');
  showCli(['list', podA.bucket, 'users/', '-n', ns, '--app', 'k8s-kv-demo', '--values'], env);
  showCli(['buckets', '-n', ns], env);

  if (keep) {
    step('kept: look at it yourself (from the repository root)');
    if (kubeconfigFile) console.log(`export KUBECONFIG=${kubeconfigFile}`);
    console.log(`./dev k8s-kv keys ${podA.bucket} -n ${ns} --app k8s-kv-demo`);
    console.log(`./dev k8s-kv stats ${big.bucket} -n ${ns} --app k8s-kv-demo`);
    console.log(`./dev k8s-kv watch ${podA.bucket} -n ${ns} --app k8s-kv-demo     # and put keys from another terminal`);
    console.log(`kubectl get configmaps -n ${ns} -l app.kubernetes.io/managed-by=k8s-kv --show-labels`);
    console.log(
      local
        ? './dev cluster:down    # stops the local API server when you are done'
        : `./dev k8s-kv teardown ${podA.bucket} -n ${ns} --app k8s-kv-demo --yes    # when you are done (and ${big.bucket})`,
    );
  } else {
    step('teardown');
    await podA.teardown();
    // Pod B learns of the deletion from its watch (milliseconds).
    for (let i = 0; i < 100 && (await podB.keys()).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    console.log('bucket deleted; keys seen by pod B =', await podB.keys());
    console.log('(./dev demo --keep keeps the buckets and the local API server, to look at them with the CLI or kubectl)');
  }
} finally {
  await podA.close();
  await podB.close();
  await big.close();
  await stop();
}
console.log('\nDone.');
