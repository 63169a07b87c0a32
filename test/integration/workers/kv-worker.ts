// A separate OS process writing to one bucket, for the multi-process tests.
// Input: K8S_KV_WORKER (JSON). Output: one JSON line per acknowledged write, then {"done":true}.
import { createKV, KubeConfig } from '@k8s-kv/core';

interface WorkerTask {
  kubeconfig: string;
  namespace: string;
  bucket: string;
  id: number;
  mode: 'writes' | 'counter';
  count: number;
  concurrency?: number;
}

const task = JSON.parse(process.env.K8S_KV_WORKER ?? '{}') as WorkerTask;
const kubeConfig = new KubeConfig();
kubeConfig.loadFromFile(task.kubeconfig);
const kv = createKV({ bucket: task.bucket, namespace: task.namespace, kubeConfig, app: 'multi-process' });
const ack = (record: object): void => {
  process.stdout.write(JSON.stringify(record) + '\n');
};

if (task.mode === 'counter') {
  const decoder = new TextDecoder();
  for (let i = 0; i < task.count; i++) {
    const after = await kv.update('counter', (v) => String(Number(v ? decoder.decode(v) : '0') + 1));
    ack({ op: 'update', value: decoder.decode(after) });
  }
} else {
  let next = 0;
  const writer = async (): Promise<void> => {
    while (next < task.count) {
      const i = next++;
      const key = `p${task.id}/k${String(i).padStart(4, '0')}`;
      const value = `${task.id}:${i}`;
      await kv.put(key, value);
      ack({ op: 'put', key, value });
      if (i % 10 === 0) {
        const shared = `shared/k${(i / 10) % 5}`;
        await kv.put(shared, value);
        ack({ op: 'put', key: shared, value });
      }
    }
  };
  await Promise.all(Array.from({ length: task.concurrency ?? 8 }, writer));
}
await kv.close();
ack({ done: true });
