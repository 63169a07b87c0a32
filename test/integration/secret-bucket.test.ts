// A bucket kept in a Secret, against the real API server.
import { afterAll, beforeAll } from 'vitest';
import { createClientNodeApi } from '@k8s-kv/core';
import { describeSecretBucket } from '../../packages/core/test/behaviour/secret-behaviour.ts';
import type { KvTestEnv } from '../../packages/core/test/behaviour/kv-behaviour.ts';
import { adminKubeConfig, createTestNamespace, grantRole, userKubeConfig, type TestNamespace } from '../setup/cluster.ts';

let namespace: TestNamespace;
let env: KvTestEnv;
beforeAll(async () => {
  namespace = await createTestNamespace('secret');
  // alice may use ConfigMaps here, not Secrets.
  await grantRole(namespace.name, 'alice', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] }]);
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

describeSecretBucket('real API server', () => env);
