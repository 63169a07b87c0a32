// One OS process writing through an evicting store, for the eviction tests: new
// keys, and rewrites of the entry its own view shows as the oldest (the entry that
// the other processes' views, a little behind, are the most likely to plan to
// evict). Its watch delivers every event `watchDelayMs` late, as a busy cluster's may:
// its views are often behind the server. Input: K8S_KV_WORKER (JSON). Output:
// {"acks":N,"failures":[...]}, then {"done":true}.
import { createClientNodeApi, createKV, KubeConfig, type KubeApi, type KVError } from '@k8s-kv/core';

interface Task {
  kubeconfig: string;
  namespace: string;
  bucket: string;
  id: number;
  ops: number;
  concurrency: number;
  maxEntries: number;
  watchDelayMs: number;
}

const task = JSON.parse(process.env.K8S_KV_WORKER ?? '{}') as Task;
const kubeConfig = new KubeConfig();
kubeConfig.loadFromFile(task.kubeconfig);
const port = createClientNodeApi(kubeConfig);
/** The port, with every watch event delivered `watchDelayMs` late (in order). */
const api: KubeApi = new Proxy(port, {
  get(target, property) {
    if (property === 'watch') {
      return ((kind, namespace, options) =>
        target.watch(kind, namespace, {
          ...options,
          onEvent: (event) => void setTimeout(() => options.onEvent(event), task.watchDelayMs),
        })) satisfies KubeApi['watch'];
    }
    const value = Reflect.get(target, property) as unknown;
    return typeof value === 'function' ? value.bind(target) : value;
  },
});
// maxBytes of one ConfigMap: the bucket stays the one object the test records (160 entries would split past the split threshold).
const kv = createKV({
  bucket: task.bucket,
  namespace: task.namespace,
  api,
  app: 'evict',
  evict: 'oldest',
  maxEntries: task.maxEntries,
  maxBytes: 1024 * 1024,
  compress: false,
});
await kv.keys(); // the cache runs: writes plan their evictions on it

let next = 0;
let acks = 0;
const failures: string[] = [];
await Promise.all(
  Array.from({ length: task.concurrency }, async () => {
    while (next < task.ops) {
      const i = next++;
      let key = `p${task.id}/n${String(i).padStart(4, '0')}`;
      if (i % 3 === 2) {
        const entries = await kv.entries();
        const oldest = entries.reduce<(typeof entries)[number] | undefined>((min, e) => (!min || e.modifiedAt < min.modifiedAt ? e : min), undefined);
        if (oldest) key = oldest.key;
      }
      try {
        await kv.put(key, `${task.id}:${i}:`.padEnd(100, '.'));
        acks += 1;
      } catch (error) {
        failures.push(`${(error as KVError).code ?? ''} ${(error as Error).message}`);
      }
    }
  }),
);
await kv.close();
process.stdout.write(JSON.stringify({ acks, failures }) + '\n');
process.stdout.write(JSON.stringify({ done: true }) + '\n');
