// The Keyv adapter's behaviour suite against the real API server: @keyv/test-suite
// (keyvTestSuite and keyvIteratorTests) with Keyv 5, then the adapter's own promises.
import { afterAll, beforeAll } from 'vitest';
import keyvTestSuite, { keyvIteratorTests } from '@keyv/test-suite';
import { describeKeyvAdapter, type KeyvAdapterTestEnv } from '../../packages/keyv-adapter/test/behaviour.ts';
import type { TestNamespace } from '../setup/cluster.ts';
import { keyvServerEnv } from '../setup/kv-env.ts';

let namespace: TestNamespace;
let env: KeyvAdapterTestEnv;

beforeAll(async () => {
  ({ env, namespace } = await keyvServerEnv('keyv'));
});
afterAll(async () => {
  await namespace?.cleanup();
});

describeKeyvAdapter('real API server', { keyvTestSuite, keyvIteratorTests }, () => env);
