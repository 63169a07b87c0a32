/**
 * The real port keeps one undici dispatcher (one connection) while the TLS setup
 * client-node hands it for each request is the same; these cases say what "the
 * same" means. client-node decodes the CA, certificate and key afresh for every
 * request, so equal setups arrive as different but byte-equal buffers.
 */
import { describe, expect, it } from 'vitest';
import { sameTlsSetup } from '../src/kube/client-node-api.ts';

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
