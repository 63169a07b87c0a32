/**
 * The real port keeps one undici dispatcher (one connection) while the TLS setup
 * client-node hands it for each request is the same; these cases say what "the
 * same" means. client-node decodes the CA, certificate and key afresh for every
 * request, so equal setups arrive as different but byte-equal buffers.
 */
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { KubeConfig } from '@kubernetes/client-node';
import { isTransient } from '../src/engine/api-errors.ts';
import { createClientNodeApi, sameTlsSetup } from '../src/kube/client-node-api.ts';

const setup = (cert = 'CERT') => ({
  connect: { ca: Buffer.from('CA'), cert: Buffer.from(cert), key: Buffer.from('KEY'), keepAlive: true, keepAliveInitialDelay: 30000 },
});

describe('sameTlsSetup', () => {
  it('takes byte-equal buffers decoded afresh as the same setup', () => {
    expect(sameTlsSetup(setup(), setup())).toBe(true);
  });

  it('tells a rotated client certificate apart', () => {
    expect(sameTlsSetup(setup('CERT'), setup('CERT-2'))).toBe(false);
  });

  it('tells changed settings apart: another server name, verification off, a key missing', () => {
    const a = setup();
    expect(sameTlsSetup(a, { connect: { ...a.connect, servername: 'api.example' } })).toBe(false);
    expect(sameTlsSetup(a, { connect: { ...a.connect, rejectUnauthorized: false } })).toBe(false);
    const { key: _key, ...withoutKey } = a.connect;
    expect(sameTlsSetup(a, { connect: withoutKey })).toBe(false);
  });

  it('ignores keys set to undefined', () => {
    expect(sameTlsSetup({ connect: { ca: 'x', cert: undefined } }, { connect: { ca: 'x' } })).toBe(true);
  });

  it('compares arrays (several CAs) item by item', () => {
    expect(sameTlsSetup({ ca: [Buffer.from('a'), 'b'] }, { ca: [Buffer.from('a'), 'b'] })).toBe(true);
    expect(sameTlsSetup({ ca: [Buffer.from('a'), 'b'] }, { ca: [Buffer.from('a')] })).toBe(false);
  });

  it('never takes a function (a custom connector) as the same, not even itself', () => {
    const connect = (): void => undefined;
    expect(sameTlsSetup({ connect }, { connect })).toBe(false);
  });
});

describe('requestTimeoutMs', () => {
  it('bounds the whole call, connecting included: a server that accepts and never answers fails it in time, as a transient error', async () => {
    const sockets = new Set<Socket>();
    const server = createServer((socket) => sockets.add(socket)); // accepts TCP, never starts TLS
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      clusters: [{ name: 'silent', server: `https://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: 'someone', token: 'token' }],
      contexts: [{ name: 'silent', cluster: 'silent', user: 'someone' }],
      currentContext: 'silent',
    });
    // undici's own connect timeout is 10 s, past this test's 5 s: only requestTimeoutMs can end these calls in time.
    const api = createClientNodeApi(kubeConfig, { requestTimeoutMs: 300 });
    try {
      const got = await api.get({ kind: 'ConfigMap', namespace: 'default', name: 'x' }).catch((e: unknown) => e);
      expect(isTransient(got)).toBe(true);
      const watched = await api.watch('ConfigMap', 'default', { resourceVersion: '0', onEvent: () => {}, onClose: () => {} }).catch((e: unknown) => e);
      expect(isTransient(watched)).toBe(true);
    } finally {
      for (const socket of sockets) socket.destroy();
      server.close();
    }
  });
});
