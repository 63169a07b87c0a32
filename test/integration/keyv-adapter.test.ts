// The Keyv adapter's behaviour suite against the real API server: @keyv/test-suite
// (keyvTestSuite and keyvIteratorTests) with Keyv 5, then the adapter's own promises.
import { afterAll, beforeAll } from 'vitest';
import keyvTestSuite, { keyvIteratorTests } from '@keyv/test-suite';
import { createClientNodeApi } from '@k8s-kv/core';
import { describeKeyvAdapter, type KeyvAdapterTestEnv } from '../../packages/keyv-adapter/test/behaviour.ts';
import { adminKubeConfig, createTestNamespace, grantRole, userKubeConfig, type TestNamespace } from '../setup/cluster.ts';

let namespace: TestNamespace;
let env: KeyvAdapterTestEnv;

beforeAll(async () => {
  namespace = await createTestNamespace('keyv');
  // alice may read and write configmaps but not list or watch them; bob may do nothing.
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

describeKeyvAdapter('real API server', { keyvTestSuite, keyvIteratorTests }, () => env);
