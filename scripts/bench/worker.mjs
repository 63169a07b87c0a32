#!/usr/bin/env node
// A process the benchmark starts (procs.mjs), with its task as JSON in K8S_KV_BENCH_WORKER:
//   mode 'put' (default)  a writer: says "ready", waits for a line on stdin, then puts `count`
//                         new keys with `concurrency` callers and prints its time and CPU
//   mode 'overwrite'      the same clock, but rewrites keys the bucket already holds, with
//                         values of the same size (a bucket in steady state: no split); each
//                         value starts with `r<round>-p<id>-<i>:` so that the caller can check it
//   mode 'memory'         the memory a fully cached bucket costs, in a fresh process
import { createKV, KubeConfig } from '@k8s-kv/core';
import { benchKey, randomValue, withCallers } from './util.mjs';

const task = JSON.parse(process.env.K8S_KV_BENCH_WORKER ?? '{}');
const kubeConfig = new KubeConfig();
kubeConfig.loadFromFile(task.kubeconfig);
const open = (bucket, options = {}) => createKV({ bucket, namespace: task.namespace, kubeConfig, app: 'bench', ...options });

if (task.mode === 'memory') {
  const kv = open(task.bucket);
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      global.gc();
      await new Promise((r) => setTimeout(r, 20));
    }
    return process.memoryUsage();
  };
  // Load the modules and open a connection on another (empty) bucket first.
  const empty = open('bench-memory-empty');
  await empty.get('x');
  await empty.close();
  const before = await settle();
  const values = await kv.list(); // the bucket cached, every entry decoded
  const after = await settle();
  const used = (m) => m.heapUsed + m.external; // decoded values live in ArrayBuffers, outside the JS heap
  process.stdout.write(JSON.stringify({ keys: values.size, heapDeltaMiB: (used(after) - used(before)) / 1048576, rssMiB: after.rss / 1048576 }) + '\n');
  await kv.close();
  process.exit(0);
}

// A writer that never reads never starts the watch cache (as in an application that only writes).
const kv = open(task.bucket, task.options);
/** Put number `i`: its key and value. */
let write;
if (task.mode === 'overwrite') {
  // Keys `key-<k * processes + id>` for k < keysPerProcess: the process's share of the prefilled keys.
  const keyOf = (i) => benchKey((i % task.keysPerProcess) * task.processes + task.id);
  const values = Array.from({ length: task.count }, (_, i) => {
    const marker = Buffer.from(`r${task.round}-p${task.id}-${i}:`);
    return Buffer.concat([marker, randomValue(task.valueSize - marker.length)]);
  });
  write = (i) => kv.put(keyOf(i), values[i]);
  await kv.put(keyOf(0), values[0]); // warm-up: the connection and the layout (written again as put 0)
} else {
  write = (i) => kv.put(`put-${task.id}-${i}`, `value ${i}`);
  await kv.put(`warm-up-${task.id}`, 'x');
}
process.stdout.write('ready\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
const started = performance.now();
const cpuBefore = process.cpuUsage();
await withCallers(task.count, task.concurrency, write);
const ms = performance.now() - started;
const cpu = process.cpuUsage(cpuBefore);
await kv.close();
process.stdout.write(JSON.stringify({ ms, count: task.count, cpuMs: (cpu.user + cpu.system) / 1000 }) + '\n');
process.exit(0);
