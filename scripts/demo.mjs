#!/usr/bin/env node
// The main job, end to end: a k8s-kv bucket in a real Kubernetes API server.
// Uses the current kube context when one is configured and reachable;
// otherwise builds and starts the local test API server (test/cluster) and
// stops it afterwards. Everything it writes lives in the ConfigMap
// "k8s-kv-demo" (and the sharded bucket "k8s-kv-demo-sharded"), which it deletes at the end.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createKV, KubeConfig, KVError } from '@k8s-kv/core';
import { ensureCluster, stopCluster } from './cluster.mjs';

const step = (text) => console.log(`\n== ${text}`);
const decoder = new TextDecoder();

async function reachable(kubeConfig) {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) return false;
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

async function chooseCluster() {
  const configured = process.env.KUBECONFIG || existsSync(join(homedir(), '.kube', 'config'));
  if (configured) {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromDefault();
    if (await reachable(kubeConfig)) {
      console.log(`Using the current kube context "${kubeConfig.getCurrentContext()}" (${kubeConfig.getCurrentCluster()?.server}).`);
      return { kubeConfig, stop: async () => {} };
    }
    console.log(`The current kube context "${kubeConfig.getCurrentContext()}" does not answer; starting the local API server instead.`);
  } else {
    console.log('No kube context configured: starting the local test API server (the first build takes a few minutes).');
  }
  const info = await ensureCluster({ log: (m) => console.log(`  [cluster] ${m}`) });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(info.kubeconfig);
  return { kubeConfig, stop: async () => { if (info.started) await stopCluster({ log: () => {} }); } };
}

const { kubeConfig, stop } = await chooseCluster();
const podA = createKV({ bucket: 'k8s-kv-demo', app: 'k8s-kv-demo', kubeConfig });
const podB = createKV({ bucket: 'k8s-kv-demo', app: 'k8s-kv-demo', kubeConfig });
const big = createKV({ bucket: 'k8s-kv-demo-sharded', app: 'k8s-kv-demo', kubeConfig, shards: 16 });
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
  await Promise.all([podA, podB].map(async (pod) => { for (let i = 0; i < 100; i++) await pod.update('counter', increment); }));
  console.log(`counter           = ${await podA.getText('counter')} (expected 200) in ${Date.now() - started} ms`);

  step('batch: 500 keys in one atomic patch, read back in one call');
  await podA.putMany(Array.from({ length: 500 }, (_, i) => ({ key: `batch/${String(i).padStart(3, '0')}`, value: `value ${i}` })));
  const some = await podA.getMany(['batch/000', 'batch/499', 'batch/500']);
  console.log('getMany (pod A)   =', some.map((v) => v && decoder.decode(v)));
  // Pod B reads from its watch cache: it sees A's batch once the watch delivers it (milliseconds).
  await new Promise((r) => setTimeout(r, 200));
  console.log('keys under batch/ (pod B) =', (await podB.keys('batch/')).length);
  console.log('stats             =', await podA.stats());

  step('TTL: the session key expires');
  await new Promise((r) => setTimeout(r, 1600));
  console.log('session:abc       =', await podA.getText('session:abc'));

  step('typed errors: a value over 1 MiB is refused before any API call');
  try {
    await podA.put('too-big', new Uint8Array(1_100_000).map(() => Math.random() * 256));
  } catch (error) {
    console.log(`${error.code}: ${error.message}`);
  }

  step('sharded bucket: 2000 keys over 16 ConfigMaps, a put costs what it costs on a small bucket');
  await big.teardown();
  await big.putMany(Array.from({ length: 2000 }, (_, i) => [`item/${i}`, `${i}:${randomBytes(200).toString('hex')}`]));
  const times = [];
  for (let i = 0; i < 50; i++) {
    const t0 = performance.now();
    await big.put(`item/${(i * 37) % 2000}`, `changed ${i}`);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const { keys, shards, bytes, limitBytes } = await big.stats();
  console.log(`stats             = ${keys} keys, ${bytes} bytes in ${shards} shards (limit ${limitBytes} bytes)`);
  console.log(`put p50           = ${times[25].toFixed(1)} ms (50 puts)`);
  console.log(`kubectl get configmaps -l k8s-kv.io/bucket=${big.bucket}   # the head and its 16 shards`);
  await big.teardown();

  step('what kubectl sees');
  console.log(`kubectl get configmap ${podA.bucket} -n ${podA.namespace} --show-labels`);
  console.log(`kubectl get configmaps -l app.kubernetes.io/managed-by=k8s-kv,k8s-kv.io/app=k8s-kv-demo`);

  step('teardown');
  await podA.teardown();
  // Pod B learns of the deletion from its watch (milliseconds).
  for (let i = 0; i < 100 && (await podB.keys()).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  console.log('bucket deleted; keys seen by pod B =', await podB.keys());
} finally {
  await podA.close();
  await podB.close();
  await big.close();
  await stop();
}
console.log('\nDone.');
