#!/usr/bin/env node
// The test cluster: a real kube-apiserver with an embedded etcd, built from
// test/cluster (Go) and run as one detached process on 127.0.0.1.
//
//   node scripts/cluster.mjs up        build if needed, start if not running, print the kubeconfig path
//   node scripts/cluster.mjs down      stop it (SIGTERM, SIGKILL after a timeout)
//   node scripts/cluster.mjs restart   stop and start again on the same ports, etcd data kept
//   node scripts/cluster.mjs status    print the state; exit 0 when ready, 3 when not running
//   node scripts/cluster.mjs kubeconfig   print the admin kubeconfig path
//   node scripts/cluster.mjs build     build the binary if its sources changed
//
// State lives in .cluster/ at the repository root (K8S_KV_CLUSTER_DIR overrides):
// bin/test-apiserver, state.json (pid, ports), apiserver.log, etcd/, pki/,
// tokens.csv, kubeconfig (admin), kubeconfig-alice, kubeconfig-bob.
//
// Also a module: ensureCluster(), stopCluster(), restartCluster(),
// clusterStatus(), buildBinary(), clusterPaths. No dependencies.

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const STATE_DIR = resolve(process.env.K8S_KV_CLUSTER_DIR || join(ROOT, '.cluster'));

export const clusterPaths = Object.freeze({
  root: ROOT,
  stateDir: STATE_DIR,
  source: join(ROOT, 'test', 'cluster'),
  binary: join(STATE_DIR, 'bin', 'test-apiserver'),
  binaryHash: join(STATE_DIR, 'bin', 'test-apiserver.sha256'),
  state: join(STATE_DIR, 'state.json'),
  lock: join(STATE_DIR, 'lock'),
  log: join(STATE_DIR, 'apiserver.log'),
  ca: join(STATE_DIR, 'pki', 'ca.crt'),
  tokens: join(STATE_DIR, 'tokens.csv'),
  kubeconfig: join(STATE_DIR, 'kubeconfig'),
  kubeconfigs: {
    admin: join(STATE_DIR, 'kubeconfig'),
    alice: join(STATE_DIR, 'kubeconfig-alice'),
    bob: join(STATE_DIR, 'kubeconfig-bob'),
  },
});

const READY_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 30_000;
const LOCK_TIMEOUT_MS = 20 * 60_000; // a cold build holds the lock for minutes
const LOG_ROTATE_BYTES = 20 * 1024 * 1024;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** @type {(msg: string) => unknown} */
const defaultLog = (msg) => process.stderr.write(`[cluster] ${msg}\n`);
const seconds = (ms) => `${(ms / 1000).toFixed(1)}s`;

// ---------------------------------------------------------------- state

function readState() {
  try {
    return JSON.parse(fs.readFileSync(clusterPaths.state, 'utf8'));
  } catch {
    return {};
  }
}

function writeState(state) {
  fs.mkdirSync(STATE_DIR, { recursive: true });
  const tmp = `${clusterPaths.state}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  fs.renameSync(tmp, clusterPaths.state);
}

function isAlive(pid) {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return err.code === 'EPERM';
  }
  // Guard against a recycled pid: on Linux, check that it is our binary.
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.includes('test-apiserver')) return false;
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/\) Z /.test(stat)) return false; // zombie: exited, not yet reaped
  } catch {
    // no /proc: trust kill(0)
  }
  return true;
}

/** Reads the static tokens (user -> token) written by the binary. */
function readTokens() {
  const tokens = {};
  try {
    for (const line of fs.readFileSync(clusterPaths.tokens, 'utf8').split('\n')) {
      const [token, user] = line.split(',');
      if (token && user) tokens[user] = token;
    }
  } catch {
    // not written yet
  }
  return tokens;
}

// ---------------------------------------------------------------- lock
// One ensure/stop/restart at a time across processes (two test runs, or a
// developer's `up` during a test run). The lock file holds the owner's pid.

async function withLock(fn, log) {
  fs.mkdirSync(STATE_DIR, { recursive: true });
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  let told = false;
  for (;;) {
    try {
      fs.writeFileSync(clusterPaths.lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      let owner = 0;
      try {
        owner = Number(fs.readFileSync(clusterPaths.lock, 'utf8'));
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
        fs.rmSync(clusterPaths.lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`cluster lock ${clusterPaths.lock} held by pid ${owner} for too long`);
      if (!told) {
        log(`waiting for pid ${owner}, which holds ${clusterPaths.lock}...`);
        told = true;
      }
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(clusterPaths.lock, { force: true });
  }
}

// ---------------------------------------------------------------- build

function sourceHash() {
  const dir = clusterPaths.source;
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.go') || f === 'go.mod' || f === 'go.sum')
    .sort();
  const h = createHash('sha256');
  for (const f of files) {
    h.update(`${f}\0`);
    h.update(fs.readFileSync(join(dir, f)));
    h.update('\0');
  }
  return h.digest('hex');
}

function currentBinaryHash() {
  try {
    return fs.readFileSync(clusterPaths.binaryHash, 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * Builds .cluster/bin/test-apiserver when it is missing or test/cluster's
 * sources (*.go, go.mod, go.sum) changed since it was built.
 * @returns {{ built: boolean, buildMs: number, hash: string }}
 */
export function buildBinary({ log = defaultLog, force = false } = {}) {
  const hash = sourceHash();
  if (!force && fs.existsSync(clusterPaths.binary) && currentBinaryHash() === hash) {
    return { built: false, buildMs: 0, hash };
  }
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.error) {
    throw new Error(`cannot build the test API server: 'go' not found on PATH (${go.error.message}); install Go >= 1.26`);
  }
  log(`building the test API server with ${go.stdout.trim()} (first time takes several minutes)...`);
  fs.mkdirSync(dirname(clusterPaths.binary), { recursive: true });
  const tmp = `${clusterPaths.binary}.${process.pid}.tmp`;
  const t0 = Date.now();
  const res = spawnSync('go', ['build', '-o', tmp, '.'], {
    cwd: clusterPaths.source,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (res.error || res.status !== 0) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`go build in ${clusterPaths.source} failed (${res.error?.message ?? `exit ${res.status}`})`);
  }
  fs.renameSync(tmp, clusterPaths.binary);
  fs.writeFileSync(clusterPaths.binaryHash, `${hash}\n`);
  const buildMs = Date.now() - t0;
  log(`built ${clusterPaths.binary} in ${seconds(buildMs)}`);
  return { built: true, buildMs, hash };
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
function probeReady(port, timeoutMs = 2000) {
  let ca;
  try {
    ca = fs.readFileSync(clusterPaths.ca);
  } catch {
    return Promise.resolve(false);
  }
  const token = readTokens().admin;
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

function logTail(lines = 40) {
  try {
    const text = fs.readFileSync(clusterPaths.log, 'utf8');
    return text.split('\n').slice(-lines - 1).join('\n');
  } catch {
    return '(no log)';
  }
}

async function waitReady(pid, port, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) {
      throw new Error(`the test API server (pid ${pid}) exited during startup; last lines of ${clusterPaths.log}:\n${logTail()}`);
    }
    if (await probeReady(port)) return;
    await sleep(200);
  }
  throw new Error(
    `the test API server (pid ${pid}) was not ready on 127.0.0.1:${port} after ${seconds(timeoutMs)}; last lines of ${clusterPaths.log}:\n${logTail()}`,
  );
}

// ---------------------------------------------------------------- start / stop

function rotateLog() {
  try {
    if (fs.statSync(clusterPaths.log).size > LOG_ROTATE_BYTES) {
      fs.renameSync(clusterPaths.log, `${clusterPaths.log}.1`);
    }
  } catch {
    // no log yet
  }
}

async function startProcess(ports, binaryHash, log) {
  rotateLog();
  const logFd = fs.openSync(clusterPaths.log, 'a');
  fs.writeSync(logFd, `\n===== ${new Date().toISOString()} starting test-apiserver on 127.0.0.1:${ports.securePort} =====\n`);
  const t0 = Date.now();
  const child = spawn(
    clusterPaths.binary,
    [
      `--state-dir=${STATE_DIR}`,
      `--secure-port=${ports.securePort}`,
      `--etcd-client-port=${ports.etcdClientPort}`,
      `--etcd-peer-port=${ports.etcdPeerPort}`,
    ],
    { cwd: STATE_DIR, detached: true, stdio: ['ignore', logFd, logFd] },
  );
  fs.closeSync(logFd);
  const pid = child.pid;
  if (!pid) throw new Error(`could not start ${clusterPaths.binary}`);
  child.unref();
  writeState({ pid, ...ports, binaryHash, startedAt: new Date().toISOString() });
  log(`started test-apiserver (pid ${pid}) on https://127.0.0.1:${ports.securePort}, waiting for /readyz...`);
  await waitReady(pid, ports.securePort, READY_TIMEOUT_MS);
  const startMs = Date.now() - t0;
  log(`ready in ${seconds(startMs)}`);
  return { pid, startMs };
}

async function stopProcess(pid, { signal = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS, log = defaultLog } = {}) {
  if (!isAlive(pid)) return false;
  try {
    process.kill(pid, signal);
  } catch {
    return false;
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(100);
  }
  log(`pid ${pid} still alive after ${seconds(timeoutMs)}, sending SIGKILL`);
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
  while (isAlive(pid)) await sleep(50);
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

function describe(state, extra) {
  const server = `https://127.0.0.1:${state.securePort}`;
  return {
    kubeconfig: clusterPaths.kubeconfig,
    kubeconfigs: { ...clusterPaths.kubeconfigs },
    server,
    port: state.securePort,
    etcdClientPort: state.etcdClientPort,
    etcdPeerPort: state.etcdPeerPort,
    pid: state.pid,
    caFile: clusterPaths.ca,
    tokens: readTokens(),
    stateDir: STATE_DIR,
    log: clusterPaths.log,
    ...extra,
  };
}

/**
 * @typedef {object} ClusterInfo
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
 * Makes sure the test cluster runs and is ready: builds the binary if needed,
 * reuses a running ready server, else starts one. A running server built from
 * older sources is restarted with the new binary.
 * @param {{ log?: (msg: string) => void }} [opts]
 * @returns {Promise<ClusterInfo>}
 */
export async function ensureCluster({ log = defaultLog } = {}) {
  return withLock(async () => {
    const { built, buildMs, hash } = buildBinary({ log });
    let state = readState();
    if (isAlive(state.pid)) {
      if (state.binaryHash === hash) {
        if (await probeReady(state.securePort)) {
          return describe(state, { started: false, built, buildMs, startMs: 0 });
        }
        // Alive but not answering: starting up (another process started it) or wedged.
        try {
          await waitReady(state.pid, state.securePort, READY_TIMEOUT_MS);
          return describe(state, { started: false, built, buildMs, startMs: 0 });
        } catch (err) {
          log(`${err.message.split('\n')[0]}; restarting it`);
        }
      } else {
        log(`the running server (pid ${state.pid}) was built from other sources; restarting it`);
      }
      await stopProcess(state.pid, { log });
    }
    const ports = await choosePorts(state);
    const { pid, startMs } = await startProcess(ports, hash, log);
    state = readState();
    return describe({ ...state, pid }, { started: true, built, buildMs, startMs });
  }, log);
}

/**
 * Stops the server. signal 'SIGKILL' simulates a crash (etcd data survives:
 * writes are in the page cache even without fsync).
 * @param {{ signal?: NodeJS.Signals, timeoutMs?: number, log?: (msg: string) => void }} [opts]
 * @returns {Promise<{ stopped: boolean, pid?: number }>}
 */
export async function stopCluster({ signal = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS, log = defaultLog } = {}) {
  return withLock(async () => {
    const state = readState();
    const { pid } = state;
    const stopped = await stopProcess(pid, { signal, timeoutMs, log });
    if (pid) writeState({ ...state, pid: undefined, stoppedAt: new Date().toISOString() });
    return { stopped, pid };
  }, log);
}

/**
 * Stops the server and starts it again on the SAME ports with the same state
 * (etcd data, tokens, kubeconfigs), for fault-injection tests. Clients keep
 * their kubeconfig; in-flight requests and watches are cut.
 * @param {{ signal?: NodeJS.Signals, downMs?: number, log?: (msg: string) => void }} [opts]
 *   signal: SIGTERM (graceful, default) or SIGKILL (crash); downMs: extra time to stay down.
 * @returns {Promise<ClusterInfo & { downtimeMs: number }>}
 */
export async function restartCluster({ signal = 'SIGTERM', downMs = 0, log = defaultLog } = {}) {
  return withLock(async () => {
    const t0 = Date.now();
    const { built, buildMs, hash } = buildBinary({ log });
    const state = readState();
    if (!Number.isInteger(state.securePort)) throw new Error('the test cluster was never started: run ensureCluster() first');
    await stopProcess(state.pid, { signal, log });
    if (downMs > 0) await sleep(downMs);
    const ports = { securePort: state.securePort, etcdClientPort: state.etcdClientPort, etcdPeerPort: state.etcdPeerPort };
    // The old process is gone, so its ports are free again (or about to be).
    for (let i = 0; i < 50 && !(await Promise.all(Object.values(ports).map(portIsFree))).every(Boolean); i++) {
      await sleep(100);
    }
    const { pid, startMs } = await startProcess(ports, hash, log);
    return describe({ ...readState(), pid }, { started: true, built, buildMs, startMs, downtimeMs: Date.now() - t0 });
  }, log);
}

/**
 * @returns {Promise<{ running: boolean, ready: boolean, pid?: number, server?: string, ports: { securePort?: number, etcdClientPort?: number, etcdPeerPort?: number }, kubeconfig: string, log: string, rssKiB?: number }>}
 */
export async function clusterStatus() {
  const state = readState();
  const running = isAlive(state.pid);
  const ready = running && (await probeReady(state.securePort));
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
    running,
    ready,
    pid: running ? state.pid : undefined,
    server: state.securePort ? `https://127.0.0.1:${state.securePort}` : undefined,
    ports: { securePort: state.securePort, etcdClientPort: state.etcdClientPort, etcdPeerPort: state.etcdPeerPort },
    kubeconfig: clusterPaths.kubeconfig,
    log: clusterPaths.log,
    rssKiB,
  };
}

// ---------------------------------------------------------------- CLI

async function main(argv) {
  const cmd = argv[0] ?? 'status';
  const t0 = Date.now();
  switch (cmd) {
    case 'up': {
      const info = await ensureCluster();
      const what = info.started ? `started in ${seconds(info.startMs)}` : 'already running';
      const build = info.built ? `, built in ${seconds(info.buildMs)}` : '';
      defaultLog(`${what}${build} (pid ${info.pid}, ${info.server}, total ${seconds(Date.now() - t0)})`);
      defaultLog(`users: admin (system:masters), alice and bob (no rights); kubeconfig-<user> beside it`);
      console.log(info.kubeconfig);
      return 0;
    }
    case 'down': {
      const { stopped, pid } = await stopCluster();
      defaultLog(stopped ? `stopped pid ${pid} in ${seconds(Date.now() - t0)}` : 'not running');
      return 0;
    }
    case 'restart': {
      const signal = argv.includes('--kill') ? 'SIGKILL' : 'SIGTERM';
      const info = await restartCluster({ signal });
      defaultLog(`restarted (pid ${info.pid}, ${info.server}) in ${seconds(info.downtimeMs)}, start ${seconds(info.startMs)}`);
      console.log(info.kubeconfig);
      return 0;
    }
    case 'status': {
      const s = await clusterStatus();
      console.log(JSON.stringify(s, null, 2));
      return s.running && s.ready ? 0 : s.running ? 1 : 3;
    }
    case 'kubeconfig':
      console.log(clusterPaths.kubeconfigs[argv[1] ?? 'admin'] ?? clusterPaths.kubeconfig);
      return 0;
    case 'build': {
      const { built, buildMs } = buildBinary();
      defaultLog(built ? `built in ${seconds(buildMs)}` : 'binary up to date');
      return 0;
    }
    default:
      console.error('usage: node scripts/cluster.mjs up|down|restart [--kill]|status|kubeconfig [user]|build');
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
