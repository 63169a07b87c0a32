// Runs the mixed workload (workers/load-worker.ts) in several OS processes and
// checks the bucket against a model built from what the workers were told.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createKV, type KubeConfig } from '@k8s-kv/core';
import type { OpRecord } from './load-worker.ts';

const WORKER = fileURLToPath(new URL('./load-worker.ts', import.meta.url));

export interface WorkloadOptions {
  kubeconfig: string;
  kubeConfig: KubeConfig;
  namespace: string;
  bucket: string;
  processes: number;
  opsPerProcess: number;
  /** Keys each of a process's 8 operation slots works on (default 6). */
  keysPerSlot?: number;
  /** Incompressible bytes added to each value (default none), to grow the bucket. */
  valueBytes?: number;
  /** Called once this many operations (all processes together) have completed. */
  onProgress?: { after: number; run: () => Promise<void> };
}

export interface WorkloadResult {
  operations: number;
  acknowledged: number;
  failed: OpRecord[];
  /** Keys whose stored value is not one the model allows. */
  mismatches: Array<{ key: string; stored: string | null; allowed: string[] }>;
  counters: Array<{ key: string; stored: number; acknowledged: number; failed: number }>;
  keysChecked: number;
}

function runWorker(task: object, onRecord: () => void): Promise<OpRecord[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=source', WORKER], {
      env: { ...process.env, K8S_KV_WORKER: JSON.stringify(task) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const records: OpRecord[] = [];
    let buffer = '';
    let done = false;
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk;
      let nl: number;
      // biome-ignore lint/suspicious/noAssignInExpressions: one line of the stream per turn
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffer.slice(0, nl)) as OpRecord & { done?: boolean };
        buffer = buffer.slice(nl + 1);
        if (line.done) done = true;
        else {
          records.push(line);
          onRecord();
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('exit', (code) => (code === 0 && done ? resolve(records) : reject(new Error(`worker exited ${code}: ${stderr.slice(-2000)}`))));
  });
}

export async function runWorkload(options: WorkloadOptions): Promise<WorkloadResult> {
  let completed = 0;
  let trigger: Promise<void> | undefined;
  const onRecord = (): void => {
    completed += 1;
    if (options.onProgress && completed === options.onProgress.after) trigger = options.onProgress.run();
  };
  const perProcess = await Promise.all(
    Array.from({ length: options.processes }, (_, id) =>
      runWorker(
        {
          kubeconfig: options.kubeconfig,
          namespace: options.namespace,
          bucket: options.bucket,
          id,
          ops: options.opsPerProcess,
          seed: 1000 + id,
          slots: 8,
          keysPerSlot: options.keysPerSlot ?? 6,
          sharedCounters: 3,
          valueBytes: options.valueBytes ?? 0,
        },
        onRecord,
      ),
    ),
  );
  await trigger;

  // The model: per key, the values it may hold now.
  const allowed = new Map<string, Set<string | null> | 'any'>();
  const counters = new Map<string, { acknowledged: number; failed: number }>();
  for (const records of perProcess) {
    for (const record of records) {
      for (const [key, value] of record.effects) {
        if (value === '+1') {
          const c = counters.get(key) ?? { acknowledged: 0, failed: 0 };
          if (record.ok) c.acknowledged += 1;
          else c.failed += 1;
          counters.set(key, c);
        } else if (record.ok) {
          allowed.set(key, new Set([value]));
        } else {
          const now = allowed.get(key) ?? new Set<string | null>([null]);
          allowed.set(key, value === '?' || now === 'any' ? 'any' : new Set([...now, value]));
        }
      }
    }
  }
  const check = createKV({ bucket: options.bucket, namespace: options.namespace, kubeConfig: options.kubeConfig, app: 'load', cache: false });
  const stored = await check.list();
  await check.close();
  const decoder = new TextDecoder();
  const mismatches: WorkloadResult['mismatches'] = [];
  for (const [key, values] of allowed) {
    const value = stored.has(key) ? decoder.decode(stored.get(key)) : null;
    if (values !== 'any' && !values.has(value)) mismatches.push({ key, stored: value, allowed: [...values].map(String) });
  }
  for (const key of stored.keys()) {
    if (!allowed.has(key) && !counters.has(key)) mismatches.push({ key, stored: decoder.decode(stored.get(key)), allowed: ['(never written)'] });
  }
  const all = perProcess.flat();
  return {
    operations: all.length,
    acknowledged: all.filter((r) => r.ok).length,
    failed: all.filter((r) => !r.ok),
    mismatches,
    counters: [...counters].map(([key, c]) => ({ key, stored: Number(stored.has(key) ? decoder.decode(stored.get(key)) : 0), ...c })),
    keysChecked: allowed.size,
  };
}
