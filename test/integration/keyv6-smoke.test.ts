// Keyv 6 (installed as "keyv6") over the adapter, against the real API server:
// an adapter built for Keyv 6 (contract "keyv6") is used directly through
// `capabilities`, takes absolute expiries, answers
// batches with arrays, and its errors never crash the process.
import { afterAll, beforeAll } from 'vitest';
import { Keyv as Keyv6 } from 'keyv6';
import { describeKeyv6Contract, type KeyvAdapterTestEnv } from '../../packages/keyv-adapter/test/behaviour.ts';
import type { TestNamespace } from '../setup/cluster.ts';
import { keyvServerEnv } from '../setup/kv-env.ts';

let namespace: TestNamespace;
let env: KeyvAdapterTestEnv;

beforeAll(async () => {
  ({ env, namespace } = await keyvServerEnv('keyv6'));
});
afterAll(async () => {
  await namespace?.cleanup();
});

describeKeyv6Contract('real API server', Keyv6, () => env);
