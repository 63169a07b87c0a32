#!/usr/bin/env node
// The test cluster: a real kube-apiserver with an embedded etcd, built from
// test/cluster (Go) and run as one detached process on 127.0.0.1.
//
//   node scripts/cluster.mjs up        build if needed, start if not running, print the kubeconfig path
//   node scripts/cluster.mjs down      stop it (SIGTERM, SIGKILL after a timeout); --all: every version
//   node scripts/cluster.mjs restart   stop and start again on the same ports, etcd data kept
//   node scripts/cluster.mjs status    print the state; exit 0 when ready, 3 when not running
//   node scripts/cluster.mjs kubeconfig   print the admin kubeconfig path
//   node scripts/cluster.mjs build     build the binary if its sources changed (--all: of every release)
//   node scripts/cluster.mjs versions  list the Kubernetes releases test/cluster builds
//   node scripts/cluster.mjs modfile v1.37.2   write (and tidy) the module file of a release
//
// Every command takes --k8s <version> (1.33, v1.33, v1.33.13): which release to
// build and run. Default: the one pinned in test/cluster/go.mod. The other
// releases have their own module file there (go.<minor>.mod + go.<minor>.sum,
// built with `go build -modfile`), binary, state directory and ports, so that
// several can run at once.
//
// State lives in .cluster/ at the repository root (K8S_KV_CLUSTER_DIR overrides),
// another release's in .cluster/k8s-<minor>/: bin/test-apiserver, state.json
// (pid, ports), apiserver.log, etcd/, pki/, tokens.csv, kubeconfig (admin),
// kubeconfig-alice, kubeconfig-bob.
//
// Also a module: ensureCluster(), stopCluster(), restartCluster(),
// clusterStatus(), buildBinary(), k8sVersions(), clusterPathsFor(), writeModfile(),
// clusterPaths (the default release's). No dependencies.

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE = join(ROOT, 'test', 'cluster');
const BASE_STATE_DIR = resolve(process.env.K8S_KV_CLUSTER_DIR || join(ROOT, '.cluster'));

// ---------------------------------------------------------------- versions

/**
 * @typedef {object} K8sVersion
 * @property {string} version   the k8s.io/kubernetes release, e.g. v1.36.3
 * @property {string} minor     e.g. 1.36
 * @property {string} modfile   module file in test/cluster: go.mod, or go.<minor>.mod
 * @property {boolean} isDefault  true for go.mod's release
 */

/** The release a module file requires (its `k8s.io/kubernetes vX.Y.Z` line). */
function releaseOf(modfile) {
  const text = fs.readFileSync(join(SOURCE, modfile), 'utf8');
  const m = /^\s*k8s\.io\/kubernetes (v1\.(\d+)\.\d+)\s*$/m.exec(text);
  if (!m) throw new Error(`test/cluster/${modfile} requires no k8s.io/kubernetes release`);
  return { version: m[1], minor: `1.${m[2]}` };
}

/**
 * The Kubernetes releases test/cluster builds, oldest first: go.mod's (the
 * default) and one per go.<minor>.mod beside it.
 * @returns {K8sVersion[]}
 */
export function k8sVersions() {
  const files = fs.readdirSync(SOURCE).filter((f) => f === 'go.mod' || /^go\.1\.\d+\.mod$/.test(f));
  return files
    .map((modfile) => ({ ...releaseOf(modfile), modfile, isDefault: modfile === 'go.mod' }))
    .sort((a, b) => Number(a.minor.split('.')[1]) - Number(b.minor.split('.')[1]));
}

/**
 * Finds a release by minor (1.33, v1.33) or full version (v1.33.13); undefined
 * or '' means the default.
 * @param {string | undefined} k8s
 * @returns {K8sVersion}
 */
export function resolveK8sVersion(k8s) {
  const versions = k8sVersions();
  if (!k8s) return versions.find((v) => v.isDefault);
  const wanted = k8s.startsWith('v') ? k8s.slice(1) : k8s;
  const found = versions.find((v) => v.minor === wanted || v.version === `v${wanted}`);
  if (!found) {
    throw new Error(
      `no test API server for Kubernetes ${k8s}: test/cluster builds ${versions.map((v) => v.version).join(', ')} (see test/cluster/README.md to add one)`,
    );
  }
  return found;
}

/**
 * The files of one release's test cluster.
 * @param {string} [k8s]  release (see resolveK8sVersion); default: go.mod's
 */
export function clusterPathsFor(k8s) {
  const release = resolveK8sVersion(k8s);
  const stateDir = release.isDefault ? BASE_STATE_DIR : join(BASE_STATE_DIR, `k8s-${release.minor}`);
  return Object.freeze({
    root: ROOT,
    release,
    stateDir,
    source: SOURCE,
    binary: join(stateDir, 'bin', 'test-apiserver'),
    binaryHash: join(stateDir, 'bin', 'test-apiserver.sha256'),
    state: join(stateDir, 'state.json'),
    lock: join(stateDir, 'lock'),
    log: join(stateDir, 'apiserver.log'),
    ca: join(stateDir, 'pki', 'ca.crt'),
    tokens: join(stateDir, 'tokens.csv'),
    kubeconfig: join(stateDir, 'kubeconfig'),
    kubeconfigs: Object.freeze({
      admin: join(stateDir, 'kubeconfig'),
      alice: join(stateDir, 'kubeconfig-alice'),
      bob: join(stateDir, 'kubeconfig-bob'),
    }),
  });
}

/** The files of the default release's test cluster (test/cluster/go.mod). */
export const clusterPaths = clusterPathsFor();

const READY_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 30_000;
const LOCK_TIMEOUT_MS = 20 * 60_000; // a cold build holds the lock for minutes
const LOG_ROTATE_BYTES = 20 * 1024 * 1024;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** @type {(msg: string) => unknown} */
const defaultLog = (msg) => process.stderr.write(`[cluster] ${msg}\n`);
const seconds = (ms) => `${(ms / 1000).toFixed(1)}s`;

// ---------------------------------------------------------------- state
// Every function below takes `c`, the paths of one release's cluster (clusterPathsFor).

function readState(c) {
  try {
    return JSON.parse(fs.readFileSync(c.state, 'utf8'));
  } catch {
    return {};
  }
}

function writeState(c, state) {
  fs.mkdirSync(c.stateDir, { recursive: true });
  const tmp = `${c.state}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  fs.renameSync(tmp, c.state);
}

function isAlive(c, pid) {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return err.code === 'EPERM';
  }
  // Guard against a recycled pid: on Linux, check that it is our binary on this state directory.
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.includes('test-apiserver') || !cmdline.includes(`--state-dir=${c.stateDir}\0`)) return false;
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/\) Z /.test(stat)) return false; // zombie: exited, not yet reaped
  } catch {
    // no /proc: trust kill(0)
  }
  return true;
}

/** Reads the static tokens (user -> token) written by the binary. */
function readTokens(c) {
  const tokens = {};
  try {
    for (const line of fs.readFileSync(c.tokens, 'utf8').split('\n')) {
      const [token, user] = line.split(',');
      if (token && user) tokens[user] = token;
    }
  } catch {
    // not written yet
  }
  return tokens;
}

// ---------------------------------------------------------------- lock
// One ensure/stop/restart at a time per cluster across processes (two test
// runs, or a developer's `up` during a test run). The lock file holds the owner's pid.

async function withLock(c, fn, log) {
  fs.mkdirSync(c.stateDir, { recursive: true });
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  let told = false;
  for (;;) {
    try {
      fs.writeFileSync(c.lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      let owner = 0;
      try {
        owner = Number(fs.readFileSync(c.lock, 'utf8'));
      } catch {
        continue; // removed meanwhile
      }
      let ownerAlive = false;
      if (owner > 0) {
        try {
          process.kill(owner, 0);
          ownerAlive = true;
        } catch (e) {
          ownerAlive = e.code === 'EPERM';
        }
      }
      if (!ownerAlive || owner === process.pid) {
        fs.rmSync(c.lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`cluster lock ${c.lock} held by pid ${owner} for too long`);
      if (!told) {
        log(`waiting for pid ${owner}, which holds ${c.lock}...`);
        told = true;
      }
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(c.lock, { force: true });
  }
}

// ---------------------------------------------------------------- build

/** The module file's go.sum: go.sum beside go.mod, go.<minor>.sum beside go.<minor>.mod (as `go -modfile` names it). */
const sumfileOf = (modfile) => modfile.replace(/\.mod$/, '.sum');

/**
 * Linker flags that stamp the release into the binary, so that GET /version
 * (and kubectl version) report it instead of the v0.0.0-master+$Format:%H$ of a
 * plain `go build`. Kubernetes' own build (hack/lib/version.sh) sets the same
 * variables in both packages. No git commit: the sources come from the module
 * proxy, not from a git tree. The build date is left out of the binary's
 * source hash (see sourceHash).
 */
function versionLdflags(release, buildDate) {
  const [major, minor] = release.version.slice(1).split('.');
  const vars = { gitVersion: release.version, gitMajor: major, gitMinor: minor, gitCommit: '', gitTreeState: '', buildDate };
  return ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']
    .flatMap((pkg) => Object.entries(vars).map(([name, value]) => `-X ${pkg}.${name}=${value}`))
    .join(' ');
}

/** Hash of what the binary is built from: the Go files, this release's module files and its version stamp. */
function sourceHash(c) {
  const { modfile } = c.release;
  const files = fs
    .readdirSync(c.source)
    .filter((f) => f.endsWith('.go') || f === modfile || f === sumfileOf(modfile))
    .sort();
  const h = createHash('sha256');
  for (const f of files) {
    h.update(`${f}\0`);
    h.update(fs.readFileSync(join(c.source, f)));
    h.update('\0');
  }
  h.update(versionLdflags(c.release, ''));
  return h.digest('hex');
}

function currentBinaryHash(c) {
  try {
    return fs.readFileSync(c.binaryHash, 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * Builds the release's bin/test-apiserver when it is missing or test/cluster's
 * sources (*.go, the release's module file and go.sum) changed since it was built.
 * @param {{ k8s?: string, log?: (msg: string) => void, force?: boolean }} [opts]
 * @returns {{ built: boolean, buildMs: number, hash: string }}
 */
export function buildBinary({ k8s, log = defaultLog, force = false } = {}) {
  return build(clusterPathsFor(k8s), { log, force });
}

function build(c, { log, force = false }) {
  const hash = sourceHash(c);
  if (!force && fs.existsSync(c.binary) && currentBinaryHash(c) === hash) {
    return { built: false, buildMs: 0, hash };
  }
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.error) {
    throw new Error(`cannot build the test API server: 'go' not found on PATH (${go.error.message}); install Go >= 1.26`);
  }
  log(`building the test API server for Kubernetes ${c.release.version} with ${go.stdout.trim()} (first time takes several minutes)...`);
  fs.mkdirSync(dirname(c.binary), { recursive: true });
  const tmp = `${c.binary}.${process.pid}.tmp`;
  const t0 = Date.now();
  const buildDate = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const modfile = c.release.isDefault ? [] : [`-modfile=${c.release.modfile}`];
  const res = spawnSync('go', ['build', ...modfile, '-ldflags', versionLdflags(c.release, buildDate), '-o', tmp, '.'], {
    cwd: c.source,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (res.error || res.status !== 0) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`go build ${modfile.join(' ')} in ${c.source} failed (${res.error?.message ?? `exit ${res.status}`})`);
  }
  fs.renameSync(tmp, c.binary);
  fs.writeFileSync(c.binaryHash, `${hash}\n`);
  const buildMs = Date.now() - t0;
  log(`built ${c.binary} in ${seconds(buildMs)}`);
  return { built: true, buildMs, hash };
}

// ---------------------------------------------------------------- module files

/**
 * Writes the module file of a Kubernetes release into test/cluster and tidies
 * it: go.mod when the release has go.mod's minor (a patch bump of the
 * default), else go.<minor>.mod (a new or bumped release of the matrix). It
 * requires k8s.io/kubernetes at the release and etcd's server at the version
 * that release's own go.mod requires, and replaces every staging module it
 * requires at v0.0.0 (k8s.io/api, apiserver, client-go, ...: about 30) with the
 * release's v0.<minor>.<patch>, as `go get k8s.io/kubernetes` cannot.
 * @param {string} version  e.g. v1.37.2
 * @returns {string} the module file's name
 */
export function writeModfile(version, { log = defaultLog } = {}) {
  const m = /^v1\.(\d+)\.(\d+)$/.exec(version);
  if (!m) throw new Error(`not a Kubernetes release: ${version} (expected v1.<minor>.<patch>)`);
  const minor = `1.${m[1]}`;
  const listed = spawnSync('go', ['list', '-m', '-json', `k8s.io/kubernetes@${version}`], { cwd: SOURCE, encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`go list -m k8s.io/kubernetes@${version} failed: ${listed.stderr.trim()}`);
  const upstream = fs.readFileSync(JSON.parse(listed.stdout).GoMod, 'utf8');
  const staging = [...upstream.matchAll(/^\s+(k8s\.io\/[\w.-]+) v0\.0\.0$/gm)].map((s) => s[1]).sort();
  const etcd = /^\s+go\.etcd\.io\/etcd\/server\/v3 (v\S+)/m.exec(upstream)?.[1];
  if (staging.length === 0 || !etcd) throw new Error(`k8s.io/kubernetes@${version}'s go.mod has no staging modules or no etcd server`);
  const goLine = /^go \S+$/m.exec(fs.readFileSync(join(SOURCE, 'go.mod'), 'utf8'))[0]; // our toolchain floor
  const modfile = releaseOf('go.mod').minor === minor ? 'go.mod' : `go.${minor}.mod`;
  const text = [
    'module k8s-kv.dev/test/cluster',
    '',
    goLine,
    '',
    `require (\n\tgo.etcd.io/etcd/server/v3 ${etcd}\n\tk8s.io/kubernetes ${version}\n)`,
    '',
    '// k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with',
    '// local directories; a consumer must pin each one to the matching published tag.',
    `replace (\n${staging.map((mod) => `\t${mod} => ${mod} v0.${m[1]}.${m[2]}`).join('\n')}\n)`,
    '',
  ].join('\n');
  fs.writeFileSync(join(SOURCE, modfile), text);
  log(`wrote test/cluster/${modfile} (${staging.length} staging modules, etcd ${etcd}); go mod tidy...`);
  const tidy = spawnSync('go', ['mod', 'tidy', ...(modfile === 'go.mod' ? [] : [`-modfile=${modfile}`])], {
    cwd: SOURCE,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (tidy.status !== 0) throw new Error(`go mod tidy -modfile=${modfile} failed`);
  return modfile;
}

// ---------------------------------------------------------------- ports

function listenOn(port) {
  return new Promise((resolvePromise, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolvePromise(srv));
  });
}

const closeServer = (srv) => new Promise((r) => srv.close(() => r()));

async function portIsFree(port) {
  try {
    await closeServer(await listenOn(port));
    return true;
  } catch {
    return false;
  }
}

/** Picks n distinct free ports on 127.0.0.1 (holds all open, then releases them). */
async function freePorts(n) {
  const servers = [];
  try {
    for (let i = 0; i < n; i++) servers.push(await listenOn(0));
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map(closeServer));
  }
}

// ---------------------------------------------------------------- probing

/**
 * GET /readyz with the admin token, verifying the server against the test CA.
 * @returns {Promise<boolean>}
 */
function probeReady(c, port, timeoutMs = 2000) {
  let ca;
  try {
    ca = fs.readFileSync(c.ca);
  } catch {
    return Promise.resolve(false);
  }
  const token = readTokens(c).admin;
  return new Promise((resolvePromise) => {
    const req = https.get(
      {
        host: '127.0.0.1',
        port,
        path: '/readyz',
        ca,
        servername: 'localhost',
        headers: token ? { authorization: `Bearer ${token}` } : {},
        timeout: timeoutMs,
        agent: false,
      },
      (res) => {
        res.resume();
        resolvePromise(res.statusCode === 200);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolvePromise(false));
  });
}

function logTail(c, lines = 40) {
  try {
    const text = fs.readFileSync(c.log, 'utf8');
    return text
      .split('\n')
      .slice(-lines - 1)
      .join('\n');
  } catch {
    return '(no log)';
  }
}

async function waitReady(c, pid, port, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(c, pid)) {
      throw new Error(`the test API server (pid ${pid}) exited during startup; last lines of ${c.log}:\n${logTail(c)}`);
    }
    if (await probeReady(c, port)) return;
    await sleep(200);
  }
  throw new Error(`the test API server (pid ${pid}) was not ready on 127.0.0.1:${port} after ${seconds(timeoutMs)}; last lines of ${c.log}:\n${logTail(c)}`);
}

// ---------------------------------------------------------------- start / stop

function rotateLog(c) {
  try {
    if (fs.statSync(c.log).size > LOG_ROTATE_BYTES) {
      fs.renameSync(c.log, `${c.log}.1`);
    }
  } catch {
    // no log yet
  }
}

async function startProcess(c, ports, binaryHash, log) {
  rotateLog(c);
  const logFd = fs.openSync(c.log, 'a');
  fs.writeSync(logFd, `\n===== ${new Date().toISOString()} starting test-apiserver ${c.release.version} on 127.0.0.1:${ports.securePort} =====\n`);
  const t0 = Date.now();
  const child = spawn(
    c.binary,
    [`--state-dir=${c.stateDir}`, `--secure-port=${ports.securePort}`, `--etcd-client-port=${ports.etcdClientPort}`, `--etcd-peer-port=${ports.etcdPeerPort}`],
    { cwd: c.stateDir, detached: true, stdio: ['ignore', logFd, logFd] },
  );
  fs.closeSync(logFd);
  const pid = child.pid;
  if (!pid) throw new Error(`could not start ${c.binary}`);
  child.unref();
  writeState(c, { pid, ...ports, version: c.release.version, binaryHash, startedAt: new Date().toISOString() });
  log(`started test-apiserver ${c.release.version} (pid ${pid}) on https://127.0.0.1:${ports.securePort}, waiting for /readyz...`);
  await waitReady(c, pid, ports.securePort, READY_TIMEOUT_MS);
  const startMs = Date.now() - t0;
  log(`ready in ${seconds(startMs)}`);
  return { pid, startMs };
}

async function stopProcess(c, pid, { signal = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS, log = defaultLog } = {}) {
  if (!isAlive(c, pid)) return false;
  try {
    process.kill(pid, signal);
  } catch {
    return false;
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(c, pid)) return true;
    await sleep(100);
  }
  log(`pid ${pid} still alive after ${seconds(timeoutMs)}, sending SIGKILL`);
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
  while (isAlive(c, pid)) await sleep(50);
  return true;
}

/** Ports recorded in state.json if they are all still free, else new free ports. */
async function choosePorts(state) {
  const recorded = [state.securePort, state.etcdClientPort, state.etcdPeerPort];
  if (recorded.every((p) => Number.isInteger(p) && p > 0)) {
    const free = await Promise.all(recorded.map(portIsFree));
    if (free.every(Boolean)) {
      return { securePort: state.securePort, etcdClientPort: state.etcdClientPort, etcdPeerPort: state.etcdPeerPort };
    }
  }
  const [securePort, etcdClientPort, etcdPeerPort] = await freePorts(3);
  return { securePort, etcdClientPort, etcdPeerPort };
}

function describe(c, state, extra) {
  const server = `https://127.0.0.1:${state.securePort}`;
  return {
    version: c.release.version,
    kubeconfig: c.kubeconfig,
    kubeconfigs: { ...c.kubeconfigs },
    server,
    port: state.securePort,
    etcdClientPort: state.etcdClientPort,
    etcdPeerPort: state.etcdPeerPort,
    pid: state.pid,
    caFile: c.ca,
    tokens: readTokens(c),
    stateDir: c.stateDir,
    log: c.log,
    ...extra,
  };
}

/**
 * @typedef {object} ClusterInfo
 * @property {string} version      the Kubernetes release it runs, e.g. v1.36.3
 * @property {string} kubeconfig   admin kubeconfig path
 * @property {{admin: string, alice: string, bob: string}} kubeconfigs
 * @property {string} server       https://127.0.0.1:PORT
 * @property {number} port
 * @property {number} etcdClientPort
 * @property {number} etcdPeerPort
 * @property {number} pid
 * @property {string} caFile
 * @property {Record<string, string>} tokens   user -> bearer token
 * @property {string} stateDir
 * @property {string} log
 * @property {boolean} started     true when this call started the server
 * @property {boolean} built       true when this call built the binary
 * @property {number} buildMs
 * @property {number} startMs
 */

/**
 * Makes sure the test cluster of a release runs and is ready: builds the binary
 * if needed, reuses a running ready server, else starts one. A running server
 * built from older sources is restarted with the new binary.
 * @param {{ k8s?: string, log?: (msg: string) => void }} [opts]  k8s: the release (default: go.mod's)
 * @returns {Promise<ClusterInfo>}
 */
export async function ensureCluster({ k8s, log = defaultLog } = {}) {
  const c = clusterPathsFor(k8s);
  return withLock(
    c,
    async () => {
      const { built, buildMs, hash } = build(c, { log });
      let state = readState(c);
      if (isAlive(c, state.pid)) {
        if (state.binaryHash === hash) {
          if (await probeReady(c, state.securePort)) {
            return describe(c, state, { started: false, built, buildMs, startMs: 0 });
          }
          // Alive but not answering: starting up (another process started it) or wedged.
          try {
            await waitReady(c, state.pid, state.securePort, READY_TIMEOUT_MS);
            return describe(c, state, { started: false, built, buildMs, startMs: 0 });
          } catch (err) {
            log(`${err.message.split('\n')[0]}; restarting it`);
          }
        } else {
          log(`the running server (pid ${state.pid}) was built from other sources; restarting it`);
        }
        await stopProcess(c, state.pid, { log });
      }
      const ports = await choosePorts(state);
      const { pid, startMs } = await startProcess(c, ports, hash, log);
      state = readState(c);
      return describe(c, { ...state, pid }, { started: true, built, buildMs, startMs });
    },
    log,
  );
}

/**
 * Stops the server of a release. signal 'SIGKILL' simulates a crash (etcd data
 * survives: writes are in the page cache even without fsync).
 * @param {{ k8s?: string, signal?: NodeJS.Signals, timeoutMs?: number, log?: (msg: string) => void }} [opts]
 * @returns {Promise<{ stopped: boolean, pid?: number }>}
 */
export async function stopCluster({ k8s, signal = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS, log = defaultLog } = {}) {
  const c = clusterPathsFor(k8s);
  return withLock(
    c,
    async () => {
      const state = readState(c);
      const { pid } = state;
      const stopped = await stopProcess(c, pid, { signal, timeoutMs, log });
      if (pid) writeState(c, { ...state, pid: undefined, stoppedAt: new Date().toISOString() });
      return { stopped, pid };
    },
    log,
  );
}

/**
 * Stops the server and starts it again on the SAME ports with the same state
 * (etcd data, tokens, kubeconfigs), for fault-injection tests. Clients keep
 * their kubeconfig; in-flight requests and watches are cut.
 * @param {{ k8s?: string, signal?: NodeJS.Signals, downMs?: number, log?: (msg: string) => void }} [opts]
 *   signal: SIGTERM (graceful, default) or SIGKILL (crash); downMs: extra time to stay down.
 * @returns {Promise<ClusterInfo & { downtimeMs: number }>}
 */
export async function restartCluster({ k8s, signal = 'SIGTERM', downMs = 0, log = defaultLog } = {}) {
  const c = clusterPathsFor(k8s);
  return withLock(
    c,
    async () => {
      const t0 = Date.now();
      const { built, buildMs, hash } = build(c, { log });
      const state = readState(c);
      if (!Number.isInteger(state.securePort)) throw new Error('the test cluster was never started: run ensureCluster() first');
      await stopProcess(c, state.pid, { signal, log });
      if (downMs > 0) await sleep(downMs);
      const ports = { securePort: state.securePort, etcdClientPort: state.etcdClientPort, etcdPeerPort: state.etcdPeerPort };
      // The old process is gone, so its ports are free again (or about to be).
      for (let i = 0; i < 50 && !(await Promise.all(Object.values(ports).map(portIsFree))).every(Boolean); i++) {
        await sleep(100);
      }
      const { pid, startMs } = await startProcess(c, ports, hash, log);
      return describe(c, { ...readState(c), pid }, { started: true, built, buildMs, startMs, downtimeMs: Date.now() - t0 });
    },
    log,
  );
}

/**
 * @param {{ k8s?: string }} [opts]
 * @returns {Promise<{ version: string, running: boolean, ready: boolean, pid?: number, server?: string, ports: { securePort?: number, etcdClientPort?: number, etcdPeerPort?: number }, kubeconfig: string, log: string, rssKiB?: number }>}
 */
export async function clusterStatus({ k8s } = {}) {
  const c = clusterPathsFor(k8s);
  const state = readState(c);
  const running = isAlive(c, state.pid);
  const ready = running && (await probeReady(c, state.securePort));
  let rssKiB;
  if (running) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${state.pid}/status`, 'utf8'));
      if (m) rssKiB = Number(m[1]);
    } catch {
      // not Linux
    }
  }
  return {
    version: c.release.version,
    running,
    ready,
    pid: running ? state.pid : undefined,
    server: state.securePort ? `https://127.0.0.1:${state.securePort}` : undefined,
    ports: { securePort: state.securePort, etcdClientPort: state.etcdClientPort, etcdPeerPort: state.etcdPeerPort },
    kubeconfig: c.kubeconfig,
    log: c.log,
    rssKiB,
  };
}

// ---------------------------------------------------------------- CLI

const USAGE =
  'usage: node scripts/cluster.mjs up|down [--all]|restart [--kill]|status|kubeconfig [user]|build [--all]|versions [--k8s <version>] | modfile <v1.x.y>';

/** Splits argv into positional words and the flags --k8s <v> / --k8s=<v>, --kill, --all. */
function parseArgs(argv) {
  const words = [];
  const flags = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--k8s') flags.k8s = argv[++i];
    else if (arg.startsWith('--k8s=')) flags.k8s = arg.slice('--k8s='.length);
    else if (arg === '--kill' || arg === '--all') flags[arg.slice(2)] = true;
    else if (arg.startsWith('-')) throw new Error(`unknown option ${arg}; ${USAGE}`);
    else words.push(arg);
  }
  return { words, flags };
}

async function main(argv) {
  const { words, flags } = parseArgs(argv);
  const { k8s } = flags;
  const cmd = words[0] ?? 'status';
  const t0 = Date.now();
  switch (cmd) {
    case 'up': {
      const info = await ensureCluster({ k8s });
      const what = info.started ? `started in ${seconds(info.startMs)}` : 'already running';
      const build = info.built ? `, built in ${seconds(info.buildMs)}` : '';
      defaultLog(`Kubernetes ${info.version} ${what}${build} (pid ${info.pid}, ${info.server}, total ${seconds(Date.now() - t0)})`);
      defaultLog(`users: admin (system:masters), alice and bob (no rights); kubeconfig-<user> beside it`);
      console.log(info.kubeconfig);
      return 0;
    }
    case 'down': {
      const releases = flags.all ? k8sVersions().map((v) => v.version) : [k8s];
      for (const release of releases) {
        if (flags.all && !fs.existsSync(clusterPathsFor(release).state)) continue; // never started
        const { stopped, pid } = await stopCluster({ k8s: release });
        const { version } = resolveK8sVersion(release);
        if (stopped || !flags.all)
          defaultLog(stopped ? `stopped Kubernetes ${version} (pid ${pid}) in ${seconds(Date.now() - t0)}` : `Kubernetes ${version} not running`);
      }
      return 0;
    }
    case 'restart': {
      const info = await restartCluster({ k8s, signal: flags.kill ? 'SIGKILL' : 'SIGTERM' });
      defaultLog(`restarted Kubernetes ${info.version} (pid ${info.pid}, ${info.server}) in ${seconds(info.downtimeMs)}, start ${seconds(info.startMs)}`);
      console.log(info.kubeconfig);
      return 0;
    }
    case 'status': {
      const s = await clusterStatus({ k8s });
      console.log(JSON.stringify(s, null, 2));
      return s.running && s.ready ? 0 : s.running ? 1 : 3;
    }
    case 'kubeconfig': {
      const c = clusterPathsFor(k8s);
      console.log(c.kubeconfigs[words[1] ?? 'admin'] ?? c.kubeconfig);
      return 0;
    }
    case 'build': {
      // Under each cluster's lock, so that a build running beside a test run never races its ensureCluster().
      for (const release of flags.all ? k8sVersions().map((v) => v.version) : [k8s]) {
        const c = clusterPathsFor(release);
        const { built, buildMs } = await withLock(c, async () => build(c, { log: defaultLog }), defaultLog);
        defaultLog(built ? `built in ${seconds(buildMs)}` : `binary for Kubernetes ${c.release.version} up to date`);
      }
      return 0;
    }
    case 'modfile': {
      if (!words[1]) throw new Error('usage: node scripts/cluster.mjs modfile v1.<minor>.<patch>');
      const modfile = writeModfile(words[1]);
      defaultLog(`test/cluster/${modfile} is ready: build it with node scripts/cluster.mjs build --k8s ${words[1]}`);
      return 0;
    }
    case 'versions':
      for (const v of k8sVersions()) console.log(`${v.version}\t${v.minor}\ttest/cluster/${v.modfile}${v.isDefault ? '\t(default)' : ''}`);
      return 0;
    default:
      console.error(USAGE);
      return 2;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.error(`[cluster] ${err.message}`);
      process.exit(1);
    },
  );
}
