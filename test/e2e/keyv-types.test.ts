// TypeScript users can hand the adapter to Keyv 5, Keyv 6, cache-manager and
// cacheable without casts: compiles a small program against the installed
// type definitions (keyv 5 as "keyv", keyv 6 as "keyv6").
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';

const program = `
import Keyv, { type KeyvStoreAdapter } from 'keyv';
import { Keyv as Keyv6, type KeyvStorageAdapter } from 'keyv6';
import { Cacheable } from 'cacheable';
import { createCache } from 'cache-manager';
import { KeyvK8sKv, createKeyv, enableIterator } from '@k8s-kv/keyv-adapter';

const store = new KeyvK8sKv({ bucket: 'types', kubeNamespace: 'default' });
export const asKeyv5Adapter: KeyvStoreAdapter = store;
export const asKeyv6Adapter: KeyvStorageAdapter = store;
export const keyv5 = new Keyv({ store });
export const keyv6 = new Keyv6({ store });
export const cacheable = new Cacheable({ secondary: store });
export const cacheable2 = new Cacheable({ secondary: new Keyv({ store }) });
export const cacheManager = createCache({ stores: [new Keyv({ store })] });
export const created: Keyv = createKeyv({ bucket: 'types', ttl: 1000 });
export const iterable: Keyv = enableIterator(new Keyv({ store }));
export const deleted: Promise<boolean> = store.deleteMany(['a']);
export const stored: Promise<boolean[]> = store.setMany([{ key: 'a', value: 'b', ttl: 1 }]);
// @ts-expect-error the bucket is a string
new KeyvK8sKv({ bucket: 1 });
`;

const dir = mkdtempSync(join(tmpdir(), 'keyv-types-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('the adapter type-checks as a Keyv 5 and a Keyv 6 adapter, a cacheable secondary and a cache-manager store', () => {
  symlinkSync(fileURLToPath(new URL('../node_modules', import.meta.url)), join(dir, 'node_modules'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  writeFileSync(join(dir, 'program.ts'), program);
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2023',
        lib: ['ES2023'],
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        allowImportingTsExtensions: true,
        // The sources, not a possibly stale build (the packages' "types" export is dist/).
        paths: {
          '@k8s-kv/keyv-adapter': [fileURLToPath(new URL('../../packages/keyv-adapter/src/index.ts', import.meta.url))],
          '@k8s-kv/core': [fileURLToPath(new URL('../../packages/core/src/index.ts', import.meta.url))],
        },
        types: ['node'],
        typeRoots: [fileURLToPath(new URL('../../node_modules/@types', import.meta.url))],
      },
      files: ['program.ts'],
    }),
  );
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' });
  expect(result.stdout + result.stderr).toBe('');
  expect(result.status).toBe(0);
});
