// Keyv 6 (installed as "keyv6") over the adapter, against the real API server:
// the adapter opts in through `capabilities`, takes absolute expiries, answers
// batches with arrays, and its errors never crash the process.
import { afterAll, beforeAll } from 'vitest';
import { Keyv as Keyv6 } from 'keyv6';
import { createClientNodeApi } from '@k8s-kv/core';
import { describeKeyv6Contract, type KeyvAdapterTestEnv } from '../../packages/keyv-adapter/test/behaviour.ts';
import { adminKubeConfig, createTestNamespace, grantRole, userKubeConfig, type TestNamespace } from '../setup/cluster.ts';

let namespace: TestNamespace;
let env: KeyvAdapterTestEnv;

beforeAll(async () => {
  namespace = await createTestNamespace('keyv6');
  await grantRole(namespace.name, 'alice', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'patch', 'delete'] }]);
  env = {
    api: createClientNodeApi(adminKubeConfig()),
    kubeNamespace: namespace.name,
    forbiddenApi: createClientNodeApi(userKubeConfig('bob')),
    noWatchApi: createClientNodeApi(userKubeConfig('alice')),
  };
});
afterAll(async () => {
  await namespace?.cleanup();
});

describeKeyv6Contract('real API server', Keyv6, () => env);
