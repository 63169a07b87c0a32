// A fault-injecting proxy (./fault-proxy.ts) in front of the test cluster, with
// kubeconfigs that point at it.
//
//   const proxied = await startClusterProxy();
//   const kv = createKV({ bucket, namespace, kubeConfig: proxied.kubeConfig() });
//   proxied.proxy.inject({ match: { method: 'PATCH' }, fault: { kind: 'lose-answer' } });
//   ...
//   await proxied.close();
//
// The proxy presents the cluster's serving certificate (pki/ beside the admin
// kubeconfig), so the kubeconfigs keep the cluster's CA and tokens; only the
// server address changes. Child processes get a kubeconfig file by path.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll } from 'vitest';
import { createTestNamespace, kubeconfigPath, type TestNamespace, type TestUser } from '../setup/cluster.ts';
import { startFaultProxy, type FaultProxy } from './fault-proxy.ts';

export interface ClusterProxy {
  proxy: FaultProxy;
  /** The cluster's own address (bypasses the proxy). */
  upstream: string;
  /** Path of a kubeconfig of `user` (admin by default) whose server is the proxy. */
  kubeconfigPath(user?: TestUser): string;
  /** A KubeConfig of `user` (admin by default) whose server is the proxy. */
  kubeConfig(user?: TestUser): KubeConfig;
  /** Stops the proxy and removes its kubeconfigs. */
  close(): Promise<void>;
}

/** Rewrites a kubeconfig so that every cluster's server is `server`. */
export function kubeConfigWithServer(source: KubeConfig, server: string): KubeConfig {
  const copy = new KubeConfig();
  copy.loadFromString(source.exportConfig());
  copy.loadFromOptions({
    clusters: copy.clusters.map((cluster) => ({ ...cluster, server })),
    users: copy.users,
    contexts: copy.contexts,
    currentContext: copy.currentContext,
  });
  return copy;
}

/** Options of {@link startClusterProxy}. */
export interface ClusterProxyOptions {
  /**
   * The certificate the proxy presents: the cluster's serving certificate
   * (default; trusted by the kubeconfigs), or the cluster CA's own self-signed
   * certificate (issued for no host name), to test how clients take a server
   * they must not trust.
   */
  certificate?: 'serving' | 'ca';
}

/** Starts a fault proxy in front of the test cluster. */
export async function startClusterProxy(options: ClusterProxyOptions = {}): Promise<ClusterProxy> {
  const admin = kubeconfigPath('admin');
  const pki = join(dirname(admin), 'pki');
  const adminConfig = new KubeConfig();
  adminConfig.loadFromFile(admin);
  const upstream = adminConfig.getCurrentCluster()!.server;
  const proxy = await startFaultProxy({
    upstream,
    upstreamCa: readFileSync(join(pki, 'ca.crt')),
    cert: readFileSync(join(pki, options.certificate === 'ca' ? 'ca.crt' : 'apiserver.crt')),
    key: readFileSync(join(pki, options.certificate === 'ca' ? 'ca.key' : 'apiserver.key')),
  });
  const dir = mkdtempSync(join(tmpdir(), 'k8s-kv-proxy-'));
  const paths = new Map<TestUser, string>();
  const pathOf = (user: TestUser = 'admin'): string => {
    let path = paths.get(user);
    if (path === undefined) {
      const source = new KubeConfig();
      source.loadFromFile(kubeconfigPath(user));
      path = join(dir, `kubeconfig-${user}`);
      writeFileSync(path, kubeConfigWithServer(source, proxy.url).exportConfig(), { mode: 0o600 });
      paths.set(user, path);
    }
    return path;
  };
  return {
    proxy,
    upstream,
    kubeconfigPath: pathOf,
    kubeConfig(user: TestUser = 'admin') {
      const config = new KubeConfig();
      config.loadFromFile(pathOf(user));
      return config;
    },
    async close() {
      await proxy.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A test namespace and a fault proxy in front of the cluster for the tests of one file:
 * made before them, removed after them. Read `ns` and `proxied` inside the tests.
 */
export function useProxiedNamespace(prefix: string): { readonly ns: TestNamespace; readonly proxied: ClusterProxy } {
  let ns: TestNamespace | undefined;
  let proxied: ClusterProxy | undefined;
  beforeAll(async () => {
    ns = await createTestNamespace(prefix);
    proxied = await startClusterProxy();
  });
  afterAll(async () => {
    await proxied?.close();
    await ns?.cleanup();
  });
  return {
    get ns() {
      return ns!;
    },
    get proxied() {
      return proxied!;
    },
  };
}
