// Runs a worker script as a separate OS process, for the tests where several
// processes write one bucket at once: the task goes in as K8S_KV_WORKER (JSON),
// the worker prints one JSON line per record and {"done":true} last.
import { spawn } from 'node:child_process';

/** Runs `file` (TypeScript, through the packages' sources) with `task`; resolves to the lines it printed before `{"done":true}`. */
export function runWorkerProcess<T>(file: string, task: object): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=source', file], {
      env: { ...process.env, K8S_KV_WORKER: JSON.stringify(task) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('exit', (code) => {
      const lines = out
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as T & { done?: boolean });
      if (code !== 0 || !lines.at(-1)?.done) reject(new Error(`worker exited ${code}: ${err.slice(-2000)}`));
      else resolve(lines.slice(0, -1));
    });
  });
}
