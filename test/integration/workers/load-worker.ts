// One process of the mixed-workload tests: random put, delete, update and batch
// calls on one bucket. Input: K8S_KV_WORKER (JSON). Output: one JSON line per
// operation with its outcome, then {"done":true}.
import { createKV, KubeConfig, KVError } from '@k8s-kv/core';

interface Task {
  kubeconfig: string;
  namespace: string;
  bucket: string;
  id: number;
  ops: number;
  seed: number;
  /** Operations in flight at once (each slot owns its own keys). */
  slots: number;
  keysPerSlot: number;
  sharedCounters: number;
  /** Incompressible bytes added to every value written (default none): to grow a bucket. */
  valueBytes?: number;
}

/** What the worker reports for each operation. */
export interface OpRecord {
  op: 'put' | 'delete' | 'putMany' | 'deleteMany' | 'append' | 'increment';
  /**
   * Keys and the values they hold after the operation: a string, null for
   * deleted, '+1' for a counter increment, '?' when the value cannot be known
   * (an append that failed).
   */
  effects: Array<[string, string | null]>;
  /** True when acknowledged; false when it failed (then it may or may not have happened). */
  ok: boolean;
  code?: string;
  retryable?: boolean;
}

const task = JSON.parse(process.env.K8S_KV_WORKER ?? '{}') as Task;
const kubeConfig = new KubeConfig();
kubeConfig.loadFromFile(task.kubeconfig);
const kv = createKV({ bucket: task.bucket, namespace: task.namespace, kubeConfig, app: 'load', retry: { maxElapsedMs: 20_000 } });
const decoder = new TextDecoder();
let state = task.seed >>> 0;
const random = (n: number): number => {
  state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
  return state % n;
};
const emit = (record: OpRecord): void => {
  process.stdout.write(JSON.stringify(record) + '\n');
};

/** `bytes` incompressible, deterministic characters for operation `n` (a value is still told apart by its prefix). */
function padding(n: number, bytes: number): string {
  if (!bytes) return '';
  let x = (task.id * 1_000_003 + n) >>> 0;
  const out = new Uint8Array(Math.ceil((bytes * 3) / 4));
  for (let i = 0; i < out.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return `.${Buffer.from(out).toString('base64').slice(0, bytes)}`;
}

let issued = 0;
async function slot(s: number): Promise<void> {
  const key = (k: number): string => `p${task.id}/s${s}/k${k}`;
  while (issued < task.ops) {
    const n = issued++;
    const pick = random(100);
    const value = `${task.id}.${n}${padding(n, task.valueBytes ?? 0)}`;
    let op: OpRecord['op'];
    let effects: Array<[string, string | null]>;
    let run: () => Promise<Array<[string, string | null]> | void>;
    if (pick < 35) {
      const k = key(random(task.keysPerSlot));
      op = 'put';
      effects = [[k, value]];
      run = () => kv.put(k, value);
    } else if (pick < 50) {
      const k = key(random(task.keysPerSlot));
      op = 'delete';
      effects = [[k, null]];
      run = async () => {
        await kv.delete(k);
      };
    } else if (pick < 60) {
      const keys = [...new Set(Array.from({ length: 1 + random(4) }, () => key(random(task.keysPerSlot))))];
      op = 'putMany';
      effects = keys.map((k) => [k, value]);
      run = () => kv.putMany(keys.map((k) => [k, value] as [string, string]));
    } else if (pick < 68) {
      const keys = [...new Set(Array.from({ length: 1 + random(3) }, () => key(random(task.keysPerSlot))))];
      op = 'deleteMany';
      effects = keys.map((k) => [k, null]);
      run = async () => {
        await kv.deleteMany(keys);
      };
    } else if (pick < 80) {
      const k = key(random(task.keysPerSlot));
      op = 'append';
      effects = [[k, '?']];
      run = async () => {
        const after = await kv.update(k, (v) => (v ? `${decoder.decode(v)}+${n}` : `${n}`));
        return [[k, after ? decoder.decode(after) : null]];
      };
    } else {
      const k = `shared/c${random(task.sharedCounters)}`;
      op = 'increment';
      effects = [[k, '+1']];
      run = async () => {
        await kv.update(k, (v) => String(Number(v ? decoder.decode(v) : '0') + 1));
      };
    }
    let record: OpRecord;
    try {
      const actual = await run();
      record = { op, effects: actual ?? effects, ok: true };
    } catch (error) {
      const typed = error instanceof KVError;
      record = { op, effects, ok: false, code: typed ? error.code : String(error), retryable: typed ? error.retryable : false };
    }
    emit(record);
  }
}

await Promise.all(Array.from({ length: task.slots }, (_, s) => slot(s)));
await kv.close();
process.stdout.write(JSON.stringify({ done: true }) + '\n');
