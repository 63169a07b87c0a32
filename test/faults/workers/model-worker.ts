// One process of the model check (../model-check.test.ts): random put, putMany,
// delete, deleteMany, clear, update as increment and as one-time token
// consumption, on a plain and a sharded bucket, through the fault proxy.
// Input: K8S_KV_WORKER (JSON). Output: one JSON line per operation, then {"done":true}.
import { createKV, KubeConfig, KVError, type KV } from '@k8s-kv/core';
import { seededRandom } from '../../support/fault-proxy.ts';

export interface ModelTask {
  kubeconfig: string;
  namespace: string;
  buckets: { plain: string; sharded: string };
  id: number;
  ops: number;
  seed: number;
  slots: number;
  keysPerSlot: number;
  counters: number;
  /** Tokens `t/<n>` of the sharded bucket, minted before the workers start. */
  tokens: number;
  budgetMs: number;
  requestTimeoutMs: number;
  /** Incompressible characters added to the plain bucket's values, so that it grows past the split threshold and splits under the faults. */
  valueBytes?: number;
}

/** What the worker reports for each operation. */
export interface ModelRecord {
  bucket: 'plain' | 'sharded';
  op: 'put' | 'putMany' | 'delete' | 'deleteMany' | 'clear' | 'increment' | 'consume';
  /** The slot whose keys it wrote (slot keys are written by that slot alone, one call after the other). */
  slot?: number;
  /** Keys and the value each holds after the call (null: deleted). */
  effects: Array<[string, string | null]>;
  /** For increment: the counter; for consume: the token (minted "fresh" before the workers start). */
  key?: string;
  /** For consume: the value it writes when it finds the token fresh; whether it came back as the value stored. */
  marker?: string;
  consumed?: boolean;
  ok: boolean;
  code?: string;
  retryable?: boolean;
  message?: string;
  /** When the call started (ms since the epoch) and how long it took. */
  at: number;
  ms: number;
}

const task = JSON.parse(process.env.K8S_KV_WORKER ?? '{}') as ModelTask;
const kubeConfig = new KubeConfig();
kubeConfig.loadFromFile(task.kubeconfig);
const open = (bucket: string, shards?: number): KV =>
  createKV({
    bucket,
    namespace: task.namespace,
    kubeConfig,
    app: 'model',
    ...(shards ? { shards } : {}),
    cache: task.id % 2 === 0,
    requestTimeoutMs: task.requestTimeoutMs,
    retry: { maxElapsedMs: task.budgetMs },
  });
const stores = { plain: open(task.buckets.plain), sharded: open(task.buckets.sharded, 4) };
const decoder = new TextDecoder();
const next = seededRandom(task.seed);
const random = (n: number): number => Math.floor(next() * n);
const emit = (record: ModelRecord): void => {
  process.stdout.write(JSON.stringify(record) + '\n');
};
const FRESH = 'fresh';

/** Calls in flight: a call that never settles would otherwise only show as an unsettled top-level await. */
const inFlight = new Set<string>();
process.on('beforeExit', () => {
  if (inFlight.size > 0) process.stderr.write(`calls that never settled: ${[...inFlight].join('; ')}\n`);
});

async function run(record: Omit<ModelRecord, 'ok' | 'ms' | 'at'>, call: () => Promise<Partial<ModelRecord> | void>): Promise<void> {
  const at = Date.now();
  const started = performance.now();
  const label = `${record.op} ${record.bucket} ${record.key ?? record.effects.map(([k]) => k).join(',')}`;
  inFlight.add(label);
  let outcome: ModelRecord;
  try {
    const extra = await call();
    outcome = { ...record, ...extra, ok: true, at, ms: Math.round(performance.now() - started) };
  } catch (error) {
    const typed = error instanceof KVError;
    outcome = {
      ...record,
      ok: false,
      at,
      ms: Math.round(performance.now() - started),
      code: typed ? error.code : String(error),
      retryable: typed ? error.retryable : false,
      message: error instanceof Error ? error.message.slice(0, 300) : String(error),
    };
  }
  inFlight.delete(label);
  emit(outcome);
}

/** `bytes` incompressible characters, deterministic per worker and operation. */
function padding(n: number, bytes: number): string {
  let x = (task.id * 1_000_003 + n) >>> 0;
  const out = new Uint8Array(Math.ceil((bytes * 3) / 4));
  for (let i = 0; i < out.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return Buffer.from(out).toString('base64').slice(0, bytes);
}

let issued = 0;
async function slot(s: number): Promise<void> {
  const slotKey = (k: number): string => `p${task.id}/s${s}/k${k}`;
  while (issued < task.ops) {
    const n = issued++;
    const bucket = random(2) === 0 ? 'plain' : 'sharded';
    const kv = stores[bucket];
    const value = bucket === 'plain' && task.valueBytes ? `${task.id}.${n}.${padding(n, task.valueBytes)}` : `${task.id}.${n}`;
    const pick = random(100);
    if (pick < 25) {
      const key = slotKey(random(task.keysPerSlot));
      await run({ bucket, op: 'put', slot: s, effects: [[key, value]] }, () => kv.put(key, value));
    } else if (pick < 35) {
      const keys = [...new Set(Array.from({ length: 1 + random(4) }, () => slotKey(random(task.keysPerSlot))))];
      await run({ bucket, op: 'putMany', slot: s, effects: keys.map((k) => [k, value]) }, () => kv.putMany(keys.map((k) => [k, value] as [string, string])));
    } else if (pick < 45) {
      const key = slotKey(random(task.keysPerSlot));
      await run({ bucket, op: 'delete', slot: s, effects: [[key, null]] }, async () => void (await kv.delete(key)));
    } else if (pick < 53) {
      const keys = [...new Set(Array.from({ length: 1 + random(3) }, () => slotKey(random(task.keysPerSlot))))];
      await run({ bucket, op: 'deleteMany', slot: s, effects: keys.map((k) => [k, null]) }, async () => void (await kv.deleteMany(keys)));
    } else if (pick < 57) {
      const keys = Array.from({ length: task.keysPerSlot }, (_, k) => slotKey(k));
      await run({ bucket, op: 'clear', slot: s, effects: keys.map((k) => [k, null]) }, async () => void (await kv.clear(`p${task.id}/s${s}/`)));
    } else if (pick < 80) {
      const key = `c${random(task.counters)}`;
      await run({ bucket, op: 'increment', key, effects: [] }, async () => {
        await kv.update(key, (v) => String(Number(v ? decoder.decode(v) : '0') + 1));
      });
    } else {
      // Tokens live in the sharded bucket.
      const key = `t/${random(task.tokens)}`;
      const marker = `used-by-${task.id}.${n}`;
      await run({ bucket: 'sharded', op: 'consume', key, marker, effects: [] }, async () => {
        const after = await stores.sharded.update(key, (v) => (v && decoder.decode(v) === FRESH ? marker : undefined));
        return { consumed: after !== undefined && decoder.decode(after) === marker };
      });
    }
  }
}

await Promise.all(Array.from({ length: task.slots }, (_, s) => slot(s)));
await Promise.all([stores.plain.close(), stores.sharded.close()]);
process.stdout.write(JSON.stringify({ done: true }) + '\n');
