// The core behaviour suite against the real API server.
import { afterAll, beforeAll } from 'vitest';
import { createClientNodeApi } from '@k8s-kv/core';
import { describeKvBehaviour, type KvTestEnv } from '../../packages/core/test/behaviour/kv-behaviour.ts';
import { adminKubeConfig, createTestNamespace, userKubeConfig, type TestNamespace } from '../setup/cluster.ts';

let namespace: TestNamespace;
let env: KvTestEnv;

beforeAll(async () => {
  namespace = await createTestNamespace('core');
  env = {
    api: createClientNodeApi(adminKubeConfig()),
    namespace: namespace.name,
    missingNamespace: `${namespace.name}-missing`,
    forbiddenApi: createClientNodeApi(userKubeConfig('alice')),
  };
});
afterAll(async () => {
  await namespace?.cleanup();
});

describeKvBehaviour('real API server', () => env);
