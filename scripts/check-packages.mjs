#!/usr/bin/env node
// Checks the three packages as they would be published (pnpm check:packages, run by CI):
//   1. packs each one with `pnpm pack` (its prepack builds dist/; pnpm rewrites
//      `workspace:` ranges and applies publishConfig), in a temporary directory;
//   2. checks each tarball's manifest: dist/, LICENSE and CHANGELOG.md shipped, every export target
//      present, no `workspace:` range, no `source` condition, README links that work
//      on the registry's page;
//   3. runs publint (--strict) and @arethetypeswrong/cli on each tarball (every
//      resolution mode, node10 included; only the rule cjs-resolves-to-esm is off);
//   4. installs the tarballs into a scratch app (the npm registry for third-party
//      packages), type-checks one file that uses all three under moduleResolution
//      nodenext, bundler and node10 (skipLibCheck off, so the shipped .d.ts files are
//      checked too), runs each compiled output with Node, and runs the `k8s-kv` bin.
// The temporary directory is removed at the end, pass or fail.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGES = ['core', 'unstorage-driver', 'keyv-adapter'];
const bin = (name) => path.join(root, 'node_modules', '.bin', name);

/** @type {string[]} */
const problems = [];
const problem = (message) => {
  problems.push(message);
  console.error(`  ✗ ${message}`);
};

/** Runs a command; throws with its output when it fails. */
function run(command, args, { cwd = root, quiet = false } = {}) {
  const started = Date.now();
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', stdio: quiet ? 'pipe' : 'inherit', env: { ...process.env, FORCE_COLOR: '0' } });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    if (quiet) process.stderr.write(`${result.stdout ?? ''}${result.stderr ?? ''}`);
    throw new Error(`${command} ${args.join(' ')} (in ${path.relative(root, cwd) || '.'}) exited with ${result.status}`);
  }
  return { stdout: result.stdout ?? '', ms: Date.now() - started };
}

const readJson = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));

/** Every file path an `exports` value points at. */
function exportTargets(value) {
  if (typeof value === 'string') return [value];
  if (value === null || typeof value !== 'object') return [];
  return Object.values(value).flatMap(exportTargets);
}

/** Condition names used anywhere in an `exports` value. */
function exportConditions(value) {
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, inner]) => [...(key.startsWith('.') ? [] : [key]), ...exportConditions(inner)]);
}

/** Checks one unpacked tarball (dir = its `package/` folder). */
function checkManifest(dir, workspaceVersions) {
  const pkg = readJson(path.join(dir, 'package.json'));
  const has = (file) => fs.existsSync(path.join(dir, file));
  if (!has('dist')) problem(`${pkg.name}: no dist/ in the tarball (did prepack build?)`);
  for (const file of ['LICENSE', 'CHANGELOG.md']) if (!has(file)) problem(`${pkg.name}: no ${file} in the tarball`);
  for (const target of [pkg.main, pkg.types, ...exportTargets(pkg.exports), ...Object.values(pkg.bin ?? {})]) {
    if (target && !has(target)) problem(`${pkg.name}: ${target} is referenced by package.json but not in the tarball`);
  }
  if (exportConditions(pkg.exports).includes('source'))
    problem(`${pkg.name}: the "source" export condition is published (publishConfig.exports should leave it out)`);
  if (pkg.publishConfig?.access !== 'public') problem(`${pkg.name}: publishConfig.access is not "public"`);
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
    for (const [name, range] of Object.entries(pkg[field] ?? {})) {
      if (String(range).startsWith('workspace:')) problem(`${pkg.name}: ${field}.${name} is still "${range}" (pack with pnpm, which rewrites it)`);
      const own = workspaceVersions.get(name);
      if (own && String(range).replace(/^[\^~]/, '') !== own)
        problem(`${pkg.name}: ${field}.${name} is "${range}", not a range of the workspace's ${name}@${own}`);
    }
  }
  // The registry shows the README outside the repository: relative links there lead nowhere.
  const readme = has('README.md') ? fs.readFileSync(path.join(dir, 'README.md'), 'utf8') : '';
  if (!readme) problem(`${pkg.name}: no README.md in the tarball`);
  for (const [, link] of readme.matchAll(/\]\(([^)\s]+)(?:\s[^)]*)?\)/g)) {
    if (!/^(https?:|mailto:|#)/.test(link)) problem(`${pkg.name}: README link "${link}" is relative; use an absolute https:// link`);
  }
  return pkg;
}

/** The scratch app's one source file: every entry point of the three packages, used a little. */
const SCRATCH_SOURCE = `import { createKV, InvalidBucketNameError, KVError, type KV } from '@k8s-kv/core';
import { createMemoryApi } from '@k8s-kv/core/testing';
import { KeyvK8sKv } from '@k8s-kv/keyv-adapter';
import { k8sKvDriver } from '@k8s-kv/unstorage-driver';
import Keyv from 'keyv';
import { createStorage } from 'unstorage';

async function main(): Promise<void> {
  const api = createMemoryApi();
  const kv: KV = createKV({ bucket: 'scratch', namespace: 'default', api });
  await kv.put('greeting', 'hello');
  const greeting: string | undefined = await kv.getText('greeting');
  if (greeting !== 'hello') throw new Error(\`core: read \${greeting}\`);
  await kv.close();
  let refused: unknown;
  try {
    createKV({ bucket: 'Not A Name', api });
  } catch (error) {
    refused = error;
  }
  if (!(refused instanceof InvalidBucketNameError && refused instanceof KVError)) throw new Error(\`core: \${String(refused)}\`);

  const storage = createStorage({ driver: k8sKvDriver({ bucket: 'scratch-unstorage', namespace: 'default', api }) });
  await storage.setItem('count', 3);
  const count = await storage.getItem<number>('count');
  if (count !== 3) throw new Error(\`unstorage-driver: read \${count}\`);
  await storage.dispose();

  const keyv = new Keyv({ store: new KeyvK8sKv({ bucket: 'scratch-keyv', kubeNamespace: 'default', api }) });
  await keyv.set('k', { v: 1 });
  const value = await keyv.get<{ v: number }>('k');
  if (value?.v !== 1) throw new Error(\`keyv-adapter: read \${JSON.stringify(value)}\`);
  await keyv.disconnect();
  console.log('ok');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
`;

/** moduleResolution modes: compiler options, and the module type of the emitted files. */
const MODES = {
  nodenext: { options: { module: 'nodenext', moduleResolution: 'nodenext' }, type: 'module' },
  bundler: { options: { module: 'esnext', moduleResolution: 'bundler' }, type: 'module' },
  // CommonJS output: Node >= 22.12 require()s the ES-module packages (require(esm)).
  node10: { options: { module: 'commonjs', moduleResolution: 'node10', esModuleInterop: true }, type: 'commonjs' },
};

/** Whether a tsc error line is about the scratch app's code or one of our packages. */
const isOurs = (line) => !line.startsWith('node_modules/') || /(^|\/)@k8s-kv(\+|\/)/.test(line.split('(')[0]);

function scratchApp(tmp, tarballs) {
  const app = path.join(tmp, 'app');
  fs.mkdirSync(path.join(app, 'src'), { recursive: true });
  const rootPkg = readJson(path.join(root, 'package.json'));
  const devOf = (pkgDir, name) => readJson(path.join(root, 'packages', pkgDir, 'package.json')).devDependencies[name];
  const fileSpec = (name) => `file:${path.relative(app, tarballs.get(name))}`;
  fs.writeFileSync(
    path.join(app, 'package.json'),
    `${JSON.stringify(
      {
        name: 'k8s-kv-scratch-app',
        private: true,
        type: 'module',
        dependencies: {
          '@k8s-kv/core': fileSpec('@k8s-kv/core'),
          '@k8s-kv/unstorage-driver': fileSpec('@k8s-kv/unstorage-driver'),
          '@k8s-kv/keyv-adapter': fileSpec('@k8s-kv/keyv-adapter'),
          keyv: devOf('keyv-adapter', 'keyv'),
          unstorage: devOf('unstorage-driver', 'unstorage'),
          typescript: rootPkg.devDependencies.typescript,
          '@types/node': rootPkg.devDependencies['@types/node'],
        },
        // The drivers' "@k8s-kv/core": "^x.y.z" must resolve to the tarball, not to the registry.
        pnpm: { overrides: { '@k8s-kv/core': fileSpec('@k8s-kv/core') } },
      },
      null,
      2,
    )}\n`,
  );
  fs.writeFileSync(path.join(app, 'src', 'main.ts'), SCRATCH_SOURCE);
  const { ms } = run('pnpm', ['install', '--no-frozen-lockfile', '--prefer-offline'], { cwd: app, quiet: true });
  console.error(`  installed the tarballs and their dependencies (${(ms / 1000).toFixed(1)} s)`);
  // The drivers must use the core of the tarball: one copy of @k8s-kv/core in the app.
  const cores = fs.readdirSync(path.join(app, 'node_modules', '.pnpm')).filter((d) => d.startsWith('@k8s-kv+core@'));
  if (cores.length !== 1) problem(`scratch app: ${cores.length} copies of @k8s-kv/core installed (${cores.join(', ')})`);

  for (const [mode, { options, type }] of Object.entries(MODES)) {
    const outDir = `out-${mode}`;
    const tsconfig = `tsconfig.${mode}.json`;
    fs.writeFileSync(
      path.join(app, tsconfig),
      `${JSON.stringify({ compilerOptions: { target: 'es2023', lib: ['es2023'], types: ['node'], strict: true, skipLibCheck: false, outDir, ...options }, files: ['src/main.ts'] }, null, 2)}\n`,
    );
    fs.mkdirSync(path.join(app, outDir), { recursive: true });
    fs.writeFileSync(path.join(app, outDir, 'package.json'), `${JSON.stringify({ type })}\n`);
    try {
      // skipLibCheck is off to check the packages' own .d.ts files as the consumer's compiler
      // sees them; errors inside other packages' declarations (unstorage's optional drivers
      // name modules that are not installed) are not ours, and are left out.
      const tsc = spawnSync(path.join(app, 'node_modules', '.bin', 'tsc'), ['-p', tsconfig, '--pretty', 'false'], { cwd: app, encoding: 'utf8' });
      const errors = `${tsc.stdout}${tsc.stderr}`.split('\n').filter((line) => /error TS\d+/.test(line) && isOurs(line));
      if (errors.length > 0) throw new Error(`type errors:\n    ${errors.join('\n    ')}`);
      if (!fs.existsSync(path.join(app, outDir, 'main.js'))) throw new Error(`tsc emitted nothing (exit ${tsc.status}): ${tsc.stdout}${tsc.stderr}`);
      const { stdout } = run(process.execPath, [path.join(outDir, 'main.js')], { cwd: app, quiet: true });
      if (stdout.trim() !== 'ok') throw new Error(`printed ${JSON.stringify(stdout)}`);
      console.error(`  moduleResolution ${mode}: type-checks, and runs (${type} output)`);
    } catch (error) {
      problem(`scratch app, moduleResolution ${mode}: ${error.message}`);
    }
  }
  try {
    const { stdout } = run(path.join(app, 'node_modules', '.bin', 'k8s-kv'), ['--help'], { cwd: app, quiet: true });
    if (!stdout.includes('k8s-kv')) throw new Error('its --help does not name it');
    console.error('  the k8s-kv bin runs');
  } catch (error) {
    problem(`scratch app, k8s-kv bin: ${error.message}`);
  }
}

const started = Date.now();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'k8s-kv-packages-'));
try {
  const packs = path.join(tmp, 'packs');
  /** @type {Map<string, string>} name -> tarball */
  const tarballs = new Map();
  const workspaceVersions = new Map(
    PACKAGES.map((dir) => {
      const pkg = readJson(path.join(root, 'packages', dir, 'package.json'));
      return [pkg.name, pkg.version];
    }),
  );
  for (const dir of PACKAGES) {
    console.error(`[check-packages] packing packages/${dir}`);
    const before = new Set(fs.existsSync(packs) ? fs.readdirSync(packs) : []);
    run('pnpm', ['pack', '--pack-destination', packs], { cwd: path.join(root, 'packages', dir), quiet: true });
    const [tarball] = fs.readdirSync(packs).filter((f) => !before.has(f));
    if (!tarball) throw new Error(`pnpm pack of packages/${dir} wrote no tarball`);
    const unpacked = path.join(tmp, 'unpacked', dir);
    fs.mkdirSync(unpacked, { recursive: true });
    run('tar', ['-xzf', path.join(packs, tarball), '-C', unpacked], { quiet: true });
    const pkg = checkManifest(path.join(unpacked, 'package'), workspaceVersions);
    tarballs.set(pkg.name, path.join(packs, tarball));
    console.error(`  ${tarball}: ${fs.readdirSync(path.join(unpacked, 'package'), { recursive: true }).length} entries`);
  }
  for (const [name, tarball] of tarballs) {
    console.error(`[check-packages] publint and attw: ${name}`);
    try {
      run(bin('publint'), ['run', tarball, '--strict'], { quiet: true });
      console.error('  publint: all good');
    } catch {
      problem(`${name}: publint reports problems (above)`);
    }
    try {
      // The packages are ES modules only: attw's model of a CommonJS caller (before require(esm),
      // which Node >= 22.12 has) reports that as "ESM (dynamic import only)". Everything else counts.
      run(bin('attw'), [tarball, '--ignore-rules', 'cjs-resolves-to-esm', '--format', 'ascii'], { quiet: true });
      console.error('  attw: no problems');
    } catch {
      problem(`${name}: attw reports problems (above)`);
    }
  }
  console.error('[check-packages] scratch app');
  scratchApp(tmp, tarballs);
} catch (error) {
  problem(error.message);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
const seconds = ((Date.now() - started) / 1000).toFixed(1);
if (problems.length > 0) {
  console.error(`[check-packages] ${problems.length} problem(s) in ${seconds} s`);
  process.exit(1);
}
console.error(`[check-packages] the three packages are ready to publish (${seconds} s)`);
