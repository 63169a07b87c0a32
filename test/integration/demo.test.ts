// The demo (scripts/demo.mjs, `./dev demo`) as a new user runs it, against the
// real API server the tests started: it uses the local server (and says it
// reused it), never the current kube context unless asked, and with --keep
// prints lines that work as printed.
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKV } from '@k8s-kv/core';
import { adminKubeConfig, kubeconfigPath } from '../setup/cluster.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEMO = join(ROOT, 'scripts', 'demo.mjs');

let dir: string;
/** A "production" API server on 127.0.0.1 that only counts the connections it gets. */
let production: Server;
let connections = 0;
let productionKubeconfig: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'k8s-kv-demo-'));
  production = createServer((socket) => {
    connections += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => production.listen(0, '127.0.0.1', resolve));
  const { port } = production.address() as { port: number };
  productionKubeconfig = join(dir, 'production-kubeconfig');
  writeFileSync(
    productionKubeconfig,
    `apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: https://127.0.0.1:${port}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: production\n  context: {cluster: prod, user: u, namespace: default}\ncurrent-context: production\n`,
  );
});
afterAll(async () => {
  await new Promise((resolve) => production.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

function demo(args: string[], timeoutMs = 240_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DEMO, ...args], {
      cwd: ROOT,
      env: { ...process.env, KUBECONFIG: productionKubeconfig },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the demo did not end within ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('the demo', () => {
  it('--keep: uses the local API server (reused, and says so), never the current context, and prints lines that work as printed', {
    timeout: 300_000,
  }, async () => {
    const run = await demo(['--keep']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^Reusing the local API server already running at https:\/\/127\.0\.0\.1:\d+ \(pid \d+\)\.$/m);
    expect(run.stdout).not.toMatch(/^Started/m);
    expect(run.stdout).toMatch(/^counter {11}= 200 \(expected 200\)/m);
    // The large bucket (default options) has split into parts.
    expect(run.stdout).toMatch(/^stats {13}= 2000 keys, \d+ bytes in ([2-9]|\d{2,}) ConfigMaps \(layout elastic, /m);
    // The CLI, run by the demo, reads the same bucket.
    expect(run.stdout).toMatch(
      /^\$ \.\/dev k8s-kv list k8s-kv-demo users\/ -n default --app k8s-kv-demo --values\n {2}KEY +SIZE +MODIFIED +EXPIRES +VALUE\n {2}users\/42\/profile .*\{"name":"Ada","plan":"pro"\}$/m,
    );
    // The current context (a "production" server) was never contacted.
    expect(connections).toBe(0);

    const kept = run.stdout.slice(run.stdout.indexOf('== kept'));
    const lines = kept
      .split('\n')
      .slice(1)
      .filter((line) => line && !line.startsWith('Done'));
    expect(lines[0]).toBe(`export KUBECONFIG=${kubeconfigPath()}`);
    const cliLines = lines.filter((line) => line.startsWith('./dev k8s-kv') && !line.includes(' watch '));
    expect(cliLines.length).toBeGreaterThanOrEqual(2);
    for (const line of cliLines) {
      const shell = spawnSync('bash', ['-c', `${lines[0]}\n${line}`], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...process.env, KUBECONFIG: productionKubeconfig },
      });
      expect(shell.status, `${line}\n${shell.stderr}`).toBe(0);
      expect(shell.stdout.length, line).toBeGreaterThan(0);
    }
    expect(lines.some((line) => line.startsWith('kubectl get configmaps -n default -l app.kubernetes.io/managed-by=k8s-kv'))).toBe(true);
    expect(lines.at(-1)).toMatch(/^\.\/dev cluster:down/);

    // The state was kept; clean it up.
    for (const bucket of ['k8s-kv-demo', 'k8s-kv-demo-large']) {
      const kv = createKV({ bucket, app: 'k8s-kv-demo', namespace: 'default', kubeConfig: adminKubeConfig(), cache: false });
      expect((await kv.stats()).keys).toBeGreaterThan(0);
      await kv.teardown();
      await kv.close();
    }
  });

  it('--current-context uses the current kube context, and says when it does not answer', async () => {
    const run = await demo(['--current-context'], 60_000);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /^demo: the current kube context "production" \(https:\/\/127\.0\.0\.1:\d+\) does not answer\. Run \.\/dev demo without --current-context/m,
    );
    expect(connections).toBeGreaterThan(0);
  });

  it('refuses an unknown option', async () => {
    const run = await demo(['--bogus'], 30_000);
    expect(run).toMatchObject({ code: 2, stderr: 'demo: unknown option --bogus\nusage: ./dev demo [--keep] [--current-context]\n' });
  });
});
