// A store that runs as a pod does: KubeConfig.loadFromCluster() over the service account's token,
// ca.crt and namespace, the token issued by the real API server (TokenRequest API), rotated the way
// the kubelet rotates it, revoked and expired. The store runs in a child process
// (workers/pod-worker.ts) because loadFromCluster() reads KUBERNETES_SERVICE_HOST/PORT.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKV, type KV } from '@k8s-kv/core';
import { adminKubeConfig, createTestNamespace, grantRole, type TestNamespace } from '../setup/cluster.ts';
import {
  clusterEndpoint,
  createServiceAccount,
  expiredCopy,
  issueBoundToken,
  revokeToken,
  SERVICE_ACCOUNT_DIR,
  statusForToken,
  TcpProxy,
  writeProjectedVolume,
} from '../setup/identity.ts';

const WORKER = fileURLToPath(new URL('./workers/pod-worker.ts', import.meta.url));
const BUCKET = 'pod-state';

interface Answer {
  id?: number;
  ok?: boolean;
  code?: string;
  message?: string;
  requests?: number;
  namespace?: string;
  value?: string | null;
  event?: 'change' | 'error';
  key?: string;
  status?: number;
}

/** The pod: a worker process holding one store, driven over stdin/stdout. */
class Pod {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting = new Map<number, (answer: Answer) => void>();
  private nextId = 1;
  private stderr = '';
  /** Every { event } line so far. */
  readonly events: Answer[] = [];

  constructor(root: string, proxyPort: number) {
    this.child = spawn(process.execPath, ['--conditions=source', WORKER], {
      env: { ...process.env, K8S_KV_POD_ROOT: root, K8S_KV_BUCKET: BUCKET, KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(proxyPort) },
    });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d));
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      const answer = JSON.parse(line) as Answer;
      if (answer.event) this.events.push(answer);
      else this.waiting.get(answer.id!)?.(answer);
    });
  }

  /** Sends one command and waits for its answer. */
  call(command: { op: string; key?: string; value?: string }): Promise<Answer> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, resolve);
      this.child.once('exit', (code) => reject(new Error(`the pod worker exited (${code}): ${this.stderr.slice(-2000)}`)));
      this.child.stdin.write(`${JSON.stringify({ id, ...command })}\n`);
    });
  }

  /** Waits until `done()` holds (at most 30 s). */
  async until(done: () => boolean): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`the pod did not get there in 30 s; its events: ${JSON.stringify(this.events)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Waits until a watch event for `key` arrives. */
  changeOf(key: string): Promise<void> {
    return this.until(() => this.events.some((e) => e.event === 'change' && e.key === key));
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.stdin.end();
    this.child.kill();
    await exited;
  }
}

let ns: TestNamespace;
let root: string;
let proxy: TcpProxy;
let pod: Pod;
let admin: KV;
let serviceAccountDir: string;
/** The token in the pod's token file and the Secret it is bound to. */
let current: { token: string; boundTo: string };

/** Issues a new token bound to a new Secret and puts it into the pod's token file, as the kubelet does. */
async function rotate(name: string): Promise<{ token: string; boundTo: string }> {
  const token = await issueBoundToken(ns.name, 'kv-pod', name);
  writeProjectedVolume(serviceAccountDir, { token, 'ca.crt': clusterEndpoint().ca, namespace: ns.name });
  return { token, boundTo: name };
}

beforeAll(async () => {
  ns = await createTestNamespace('identity');
  const user = await createServiceAccount(ns.name, 'kv-pod');
  await grantRole(ns.name, user, [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] }]);
  root = mkdtempSync(join(tmpdir(), 'k8s-kv-pod-'));
  serviceAccountDir = join(root, SERVICE_ACCOUNT_DIR);
  current = await rotate('token-1');
  proxy = await TcpProxy.start();
  pod = new Pod(root, proxy.port);
  admin = createKV({ bucket: BUCKET, app: 'identity', namespace: ns.name, kubeConfig: adminKubeConfig(), cache: false });
});
afterAll(async () => {
  await pod?.close();
  await proxy?.close();
  await admin?.close();
  if (root) rmSync(root, { recursive: true, force: true });
  await ns?.cleanup();
});

describe('a store configured as in a pod (loadFromCluster, a service-account token)', () => {
  it("works in the pod's namespace, read from the namespace file", async () => {
    expect(await pod.call({ op: 'namespace' })).toMatchObject({ ok: true, namespace: ns.name });
    expect(await pod.call({ op: 'put', key: 'greeting', value: 'hello' })).toMatchObject({ ok: true });
    // The bucket is a ConfigMap in that namespace.
    const core = adminKubeConfig().makeApiClient(CoreV1Api);
    const object = await core.readNamespacedConfigMap({ namespace: ns.name, name: BUCKET });
    expect(object.metadata?.labels?.['k8s-kv.io/bucket']).toBe(BUCKET);
    expect(await admin.getText('greeting')).toBe('hello');
  });

  it('uses a token that replaced the old one in later calls and when its watch reconnects', async () => {
    expect(await pod.call({ op: 'watch' })).toMatchObject({ ok: true });
    await admin.put('before', '1');
    await pod.changeOf('before');

    // The kubelet writes a new token; then the old one stops being accepted.
    const old = current;
    current = await rotate('token-2');
    await revokeToken(ns.name, old.boundTo, old.token);
    expect(await statusForToken(current.token)).toBe(200);

    expect(await pod.call({ op: 'put', key: 'after-rotation', value: '2' })).toMatchObject({ ok: true, requests: 1 });
    expect(await pod.call({ op: 'get', key: 'greeting' })).toMatchObject({ ok: true, value: 'hello' });

    // Cut every connection: the watch must connect again, and can only with the new token.
    proxy.cut();
    await admin.put('after-reconnect', '3');
    await pod.changeOf('after-reconnect');
  });

  it('fails with KV_UNAUTHORIZED at once when the token in the file has expired', async () => {
    const valid = current.token;
    writeProjectedVolume(serviceAccountDir, { token: expiredCopy(valid), 'ca.crt': clusterEndpoint().ca, namespace: ns.name });
    const answer = await pod.call({ op: 'put', key: 'expired', value: 'x' });
    // One request, refused: no retries (the store's retry budget is ten minutes).
    expect(answer).toMatchObject({ ok: false, code: 'KV_UNAUTHORIZED', requests: 1 });
    // A valid token in the file again: the store works again, without a restart.
    writeProjectedVolume(serviceAccountDir, { token: valid, 'ca.crt': clusterEndpoint().ca, namespace: ns.name });
    expect(await pod.call({ op: 'put', key: 'valid-again', value: 'y' })).toMatchObject({ ok: true });
  });

  it('fails with KV_UNAUTHORIZED at once when its token is revoked', async () => {
    await revokeToken(ns.name, current.boundTo, current.token);
    const put = await pod.call({ op: 'put', key: 'revoked', value: 'x' });
    expect(put).toMatchObject({ ok: false, code: 'KV_UNAUTHORIZED', requests: 1 });
    expect(put.message).toMatch(/credentials|401|Unauthorized/i);
    // Once its watch is cut, it cannot watch again (reported to onError), and reads, now served by
    // GETs, fail the same way.
    const seen = pod.events.length;
    proxy.cut();
    await pod.until(() => pod.events.slice(seen).some((e) => e.event === 'error' && e.status === 401));
    const get = await pod.call({ op: 'get', key: 'greeting' });
    expect(get).toMatchObject({ ok: false, code: 'KV_UNAUTHORIZED' });
    expect(await admin.getText('revoked')).toBeUndefined();
  });
});
