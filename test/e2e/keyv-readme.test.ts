// The examples of packages/keyv-adapter/README.md run as written, each as its
// own Node.js process, against the real API server, as a user holding exactly
// the README's Role, in the kubeconfig context's namespace. Each must exit by
// itself with status 0 (so `disconnect()` really lets the process end).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeConfig } from '@kubernetes/client-node';
import { createTestNamespace, grantRole, kubeconfigPath, type TestNamespace } from '../setup/cluster.ts';

const readme = readFileSync(fileURLToPath(new URL('../../packages/keyv-adapter/README.md', import.meta.url)), 'utf8');
const testModules = fileURLToPath(new URL('../node_modules', import.meta.url));

/** The README's ```js blocks (complete programs), in order. */
const examples = [...readme.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
/** The verbs of the README's Role. */
function roleVerbs(): string[] {
  const role = [...readme.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => m[1]!).find((y) => /^kind: Role$/m.test(y));
  const verbs = role?.match(/verbs:\s*\[([^\]]*)\]/)?.[1];
  if (!verbs) throw new Error('no Role with a verbs list in the README');
  return [...verbs.matchAll(/"([a-z]+)"/g)].map((m) => m[1]!);
}

let namespace: TestNamespace;
let workDir: string;
let kubeconfigFile: string;

beforeAll(async () => {
  namespace = await createTestNamespace('keyv-readme');
  await grantRole(namespace.name, 'alice', [{ apiGroups: [''], resources: ['configmaps'], verbs: roleVerbs() }]);
  // alice's kubeconfig, with the test namespace as the context's namespace.
  const source = new KubeConfig();
  source.loadFromFile(kubeconfigPath('alice'));
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: source.clusters,
    users: source.users,
    contexts: source.contexts.map((c) => ({ ...c, namespace: namespace.name })),
    currentContext: source.currentContext,
  });
  workDir = mkdtempSync(join(tmpdir(), 'keyv-readme-'));
  kubeconfigFile = join(workDir, 'kubeconfig');
  writeFileSync(kubeconfigFile, kc.exportConfig(), { mode: 0o600 });
  // Module resolution for the examples: the test workspace's packages; for the
  // Keyv 6 example, "keyv" is keyv@6 (installed there as "keyv6").
  for (const [dir, keyvPackage] of [
    ['keyv5', 'keyv'],
    ['keyv6', 'keyv6'],
  ] as const) {
    const modules = join(workDir, dir, 'node_modules');
    mkdirSync(modules, { recursive: true });
    for (const name of readdirSync(testModules)) {
      if (name === '.bin' || name === 'keyv' || name === 'keyv6') continue;
      symlinkSync(join(testModules, name), join(modules, name));
    }
    symlinkSync(join(testModules, keyvPackage), join(modules, 'keyv'));
  }
});
afterAll(async () => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
  await namespace?.cleanup();
});

function run(file: string): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=source', file], {
      env: { PATH: process.env.PATH ?? '', HOME: workDir, KUBECONFIG: kubeconfigFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    // A process that does not exit (something still open) is a failure, not a hang of the suite.
    const guard = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe('README examples of @k8s-kv/keyv-adapter', () => {
  it('has examples for Keyv, cache-manager, cacheable and Keyv 6', () => {
    const all = examples.join('\n');
    for (const name of ["from 'keyv'", "from 'cache-manager'", "from 'cacheable'", 'Keyv 6', 'enableIterator(', 'createKeyv(']) {
      expect(all).toContain(name);
    }
  });

  for (const [index, code] of examples.entries()) {
    const keyv6 = /^\/\/ Keyv 6/.test(code);
    const title = code.split('\n').find((line) => line.startsWith('import') && !line.includes("'keyv'")) ?? code.split('\n')[0];
    it(`example ${index + 1} (${title}) runs and exits by itself`, async () => {
      const file = join(workDir, keyv6 ? 'keyv6' : 'keyv5', `example-${index + 1}.mjs`);
      writeFileSync(file, code);
      const result = await run(file);
      expect(result.stderr).toBe('');
      expect(result.signal).toBeNull();
      expect(result.code).toBe(0);
      expect(result.stdout).not.toBe('');
    });
  }
});
