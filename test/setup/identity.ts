// Helpers for the authentication tests (test/integration/identity.test.ts, auth.test.ts): service
// accounts and their tokens (TokenRequest API), a pod's service-account directory written the way
// the kubelet writes it, client certificates signed by the test cluster's CA, and a TCP proxy that
// can cut every connection through it.
import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { adminKubeConfig, clusterStateDir } from './cluster.ts';

/** The admin's view of the test cluster: its URL and CA. */
export function clusterEndpoint(): { server: URL; ca: Buffer } {
  const cluster = adminKubeConfig().getCurrentCluster()!;
  return { server: new URL(cluster.server), ca: Buffer.from(cluster.caData!, 'base64') };
}

/** Creates a ServiceAccount (the test server runs no ServiceAccount controller, so none exists by itself); returns its user name. */
export async function createServiceAccount(namespace: string, name: string): Promise<string> {
  await adminKubeConfig()
    .makeApiClient(CoreV1Api)
    .createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  return `system:serviceaccount:${namespace}:${name}`;
}

/**
 * Issues a token for a ServiceAccount with the TokenRequest API, bound to a new Secret named
 * `boundTo`: deleting that Secret revokes the token (see {@link revokeToken}).
 */
export async function issueBoundToken(namespace: string, serviceAccount: string, boundTo: string): Promise<string> {
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const secret = await core.createNamespacedSecret({ namespace, body: { metadata: { name: boundTo }, type: 'Opaque' } });
  const request = await core.createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace,
    body: {
      spec: {
        audiences: [], // the API server's own
        expirationSeconds: 3600,
        boundObjectRef: { apiVersion: 'v1', kind: 'Secret', name: boundTo, uid: secret.metadata!.uid! },
      },
    },
  });
  const token = request.status?.token;
  if (!token) throw new Error(`the TokenRequest for ${serviceAccount} was answered without a token`);
  return token;
}

/**
 * Revokes a token issued by {@link issueBoundToken} by deleting the Secret it is bound to, then waits
 * until the API server refuses it: it caches a successful authentication for 10 s.
 */
export async function revokeToken(namespace: string, boundTo: string, token: string): Promise<void> {
  await adminKubeConfig().makeApiClient(CoreV1Api).deleteNamespacedSecret({ namespace, name: boundTo });
  await waitUntilRefused(token);
}

/** The HTTP status the API server answers to GET /api with this bearer token (401: not accepted). */
export function statusForToken(token: string): Promise<number> {
  const { server, ca } = clusterEndpoint();
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host: server.hostname, port: server.port, path: '/api', ca, agent: false, headers: { authorization: `Bearer ${token}` } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
  });
}

/** Polls until the API server answers 401 to the token (at most 30 s). */
export async function waitUntilRefused(token: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await statusForToken(token)) !== 401) {
    if (Date.now() > deadline) throw new Error('the API server still accepts the token after 30 s');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The same token, expired an hour ago: its claims with `iat`, `nbf` and `exp` in the past, signed
 * again with the test cluster's service-account key (the TokenRequest API issues nothing shorter
 * than 10 minutes).
 */
export function expiredCopy(token: string): string {
  const [header, payload] = token.split('.') as [string, string];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  const now = Math.floor(Date.now() / 1000);
  Object.assign(claims, { iat: now - 7200, nbf: now - 7200, exp: now - 3600 });
  const signed = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const key = createPrivateKey(readFileSync(join(clusterStateDir(), 'pki', 'sa.key')));
  return `${signed}.${sign('sha256', Buffer.from(signed), key).toString('base64url')}`;
}

/** Where Kubernetes mounts the service account in a pod, under a root directory. */
export const SERVICE_ACCOUNT_DIR = 'var/run/secrets/kubernetes.io/serviceaccount';

/**
 * Writes files into a projected volume directory the way the kubelet does (its AtomicWriter): the
 * files go into a new hidden directory, `..data` is switched to it with one rename, and each name is
 * a symlink through `..data`. A reader sees either every old file or every new one.
 */
export function writeProjectedVolume(dir: string, files: Record<string, string | Buffer>): void {
  mkdirSync(dir, { recursive: true });
  const version = `..${new Date().toISOString().replace(/[-:.TZ]/g, '_')}${randomBytes(4).toString('hex')}`;
  mkdirSync(join(dir, version));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, version, name), content);
  let previous: string | undefined;
  try {
    previous = readlinkSync(join(dir, '..data'));
  } catch {
    // first write
  }
  const link = join(dir, '..data_tmp');
  rmSync(link, { force: true });
  symlinkSync(version, link);
  renameSync(link, join(dir, '..data'));
  for (const name of Object.keys(files)) {
    try {
      lstatSync(join(dir, name));
    } catch {
      symlinkSync(join('..data', name), join(dir, name));
    }
  }
  if (previous) rmSync(join(dir, previous), { recursive: true, force: true });
}

/**
 * A client certificate and key (PEM) for `user` in `groups`, signed by the test cluster's CA (which
 * the API server trusts for client certificates, --client-ca-file), made by the test-apiserver binary.
 */
export function issueClientCertificate(user: string, groups: string[] = []): { cert: string; key: string } {
  const dir = clusterStateDir();
  const out = execFileSync(join(dir, 'bin', 'test-apiserver'), ['client-cert', `--state-dir=${dir}`, `--user=${user}`, `--groups=${groups.join(',')}`], {
    encoding: 'utf8',
  });
  const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(out)?.[0];
  const key = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/.exec(out)?.[0];
  if (!cert || !key) throw new Error(`test-apiserver client-cert printed no certificate and key: ${out}`);
  return { cert, key };
}

/** A TCP proxy on 127.0.0.1 to the test API server (TLS passes through untouched) whose connections a test can cut. */
export class TcpProxy {
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;
  /** The proxy's port on 127.0.0.1. */
  port = 0;

  private constructor(target: { host: string; port: number }) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(target);
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        this.sockets.add(a);
        a.pipe(b);
        a.on('error', () => b.destroy());
        a.on('close', () => {
          this.sockets.delete(a);
          b.destroy();
        });
      }
    });
  }

  /** Starts a proxy to the test API server. */
  static async start(): Promise<TcpProxy> {
    const { server } = clusterEndpoint();
    const proxy = new TcpProxy({ host: server.hostname, port: Number(server.port) });
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    proxy.port = (proxy.server.address() as net.AddressInfo).port;
    return proxy;
  }

  /** Destroys every open connection (as a network failure would); new ones are accepted. */
  cut(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  /** Cuts every connection and stops accepting new ones. */
  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
