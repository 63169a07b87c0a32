// The token of a pod's token file, read again when the kubelet replaces the file. Against the real
// API server (rotation, revocation, expiry): test/integration/identity.test.ts.
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TokenFile, tokenFileOf } from '../src/kube/token-file.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'token-file-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('TokenFile', () => {
  it('reads the token without surrounding whitespace', () => {
    writeFileSync(join(dir, 'token'), 'abc.def.ghi\n');
    expect(new TokenFile(join(dir, 'token')).current()).toBe('abc.def.ghi');
  });

  it('gives the new token once the file was replaced by a rename', () => {
    const path = join(dir, 'token');
    writeFileSync(path, 'first');
    const file = new TokenFile(path);
    expect(file.current()).toBe('first');
    writeFileSync(`${path}.new`, 'second');
    renameSync(`${path}.new`, path);
    expect(file.current()).toBe('second');
  });

  it("follows the kubelet's symlink swap (token -> ..data/token, ..data switched to a new directory)", () => {
    for (const [version, token] of [
      ['..v1', 'one'],
      ['..v2', 'two'],
    ]) {
      mkdirSync(join(dir, version!));
      writeFileSync(join(dir, version!, 'token'), token!);
    }
    symlinkSync('..v1', join(dir, '..data'));
    symlinkSync(join('..data', 'token'), join(dir, 'token'));
    const file = new TokenFile(join(dir, 'token'));
    expect(file.current()).toBe('one');
    symlinkSync('..v2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    expect(file.current()).toBe('two');
  });

  it('is undefined while the file is missing or empty', () => {
    const path = join(dir, 'token');
    const file = new TokenFile(path);
    expect(file.current()).toBeUndefined();
    writeFileSync(path, '\n');
    expect(file.current()).toBeUndefined();
    writeFileSync(`${path}.new`, 'later');
    renameSync(`${path}.new`, path);
    expect(file.current()).toBe('later');
  });
});

describe('tokenFileOf', () => {
  it("finds the token file of loadFromCluster()'s user, and nothing for other users", () => {
    expect(tokenFileOf({ authProvider: { config: { tokenFile: '/run/token' } } })).toBe('/run/token');
    expect(tokenFileOf({ authProvider: { config: {} } })).toBeUndefined();
    expect(tokenFileOf({})).toBeUndefined();
    expect(tokenFileOf(null)).toBeUndefined();
  });
});
