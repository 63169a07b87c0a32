// What a user sees when the API server cannot be reached or cannot be
// trusted: the message names the server and the kube context and says how to
// change the budget; a certificate that fails verification (unknown
// authority, self-signed, another host name) is said to be untrusted, at once
// and without retries, as kubectl's "x509: ..." says, not as a hint to change
// Node's CA store. Against the real API server (and the fault proxy in front of
// it presenting the cluster CA's own self-signed certificate).
import { createServer } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createKV, KubeConfig, type RetryEvent } from '@k8s-kv/core';
import { adminKubeConfig, createTestNamespace, type TestNamespace } from '../setup/cluster.ts';
import { kubeConfigWithServer, startClusterProxy } from '../support/cluster-proxy.ts';

let ns: TestNamespace;
beforeAll(async () => {
  ns = await createTestNamespace('server-errors');
});
afterAll(async () => {
  await ns?.cleanup();
});

/** The admin kubeconfig with its cluster changed (server, CA, TLS server name). */
function kubeConfigWith(change: { server?: string; withoutCa?: boolean; tlsServerName?: string }): KubeConfig {
  const base = change.server ? kubeConfigWithServer(adminKubeConfig(), change.server) : adminKubeConfig();
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: base.clusters.map((cluster) => ({
      ...cluster,
      ...(change.withoutCa ? { caData: undefined, caFile: undefined } : {}),
      ...(change.tlsServerName ? { tlsServerName: change.tlsServerName } : {}),
    })),
    users: base.users,
    contexts: base.contexts,
    currentContext: base.currentContext,
  });
  return config;
}

async function attempt(kubeConfig: KubeConfig, retry: { maxElapsedMs: number }) {
  const events: RetryEvent[] = [];
  const kv = createKV({ bucket: 'b', namespace: ns.name, kubeConfig, cache: false, retry: { ...retry, onRetry: (e) => events.push(e) } });
  const started = Date.now();
  const error = await kv.put('k', 'v').then(
    () => undefined,
    (e: unknown) => e as Error & { code: string; retryable: boolean; server?: string; context?: string },
  );
  const ms = Date.now() - started;
  await kv.close();
  return { error, events, ms };
}

it('an unreachable server: the message names the server and the context and says how to change the budget; onRetry tells each retry', async () => {
  const port = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
  const config = kubeConfigWith({ server: `https://127.0.0.1:${port}` });
  const { error, events } = await attempt(config, { maxElapsedMs: 1_500 });
  expect(error).toMatchObject({ code: 'KV_UNAVAILABLE', retryable: true, server: `https://127.0.0.1:${port}`, context: config.getCurrentContext() });
  expect(error!.message).toContain(
    `The API server at https://127.0.0.1:${port} (kube context "${config.getCurrentContext()}") could not be reached for "get" configmaps`,
  );
  expect(error!.message).toContain('ECONNREFUSED');
  expect(error!.message).toMatch(
    /Gave up after \d+ attempts in \d+\.\d s; to wait longer or less, set retry\.maxElapsedMs \(now 1500 ms\) and requestTimeoutMs/,
  );
  expect(events.length).toBeGreaterThanOrEqual(1);
  expect(events[0]).toMatchObject({
    attempt: 1,
    budgetMs: 1_500,
    server: `https://127.0.0.1:${port}`,
    context: config.getCurrentContext(),
    reason: expect.stringContaining('ECONNREFUSED'),
  });
});

it('a server certificate signed by an unknown authority (no CA in the kubeconfig): untrusted, at once, no retries', async () => {
  const { error, events } = await attempt(kubeConfigWith({ withoutCa: true }), { maxElapsedMs: 20_000 });
  expect(error).toMatchObject({
    name: 'UntrustedServerError',
    code: 'KV_UNTRUSTED_SERVER',
    retryable: false,
    server: adminKubeConfig().getCurrentCluster()!.server,
  });
  expect(error!.message).toContain('x509: certificate signed by unknown authority');
  expect(error!.message).toContain('certificate-authority');
  expect(error!.message).not.toContain('--use-system-ca');
  expect(events).toEqual([]);
});

it('a host name the certificate was not issued for: untrusted, no retries', async () => {
  const { error, events } = await attempt(kubeConfigWith({ tlsServerName: 'not-the-api-server.example' }), { maxElapsedMs: 20_000 });
  expect(error).toMatchObject({ code: 'KV_UNTRUSTED_SERVER', retryable: false });
  expect(error!.message).toContain('x509: certificate is not valid for this server name');
  expect(error!.message).toContain('not-the-api-server.example');
  expect(events).toEqual([]);
});

it('a self-signed server certificate: untrusted, no retries', async () => {
  const proxied = await startClusterProxy({ certificate: 'ca' });
  try {
    const { error, events } = await attempt(kubeConfigWith({ server: proxied.proxy.url, withoutCa: true }), { maxElapsedMs: 20_000 });
    expect(error).toMatchObject({ code: 'KV_UNTRUSTED_SERVER', retryable: false, server: proxied.proxy.url });
    expect(error!.message).toContain('x509: certificate signed by unknown authority (the certificate is self-signed)');
    expect(events).toEqual([]);
    expect(proxied.proxy.requests).toBe(0);
  } finally {
    await proxied.close();
  }
});
