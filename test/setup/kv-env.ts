// The environments the behaviour suites need, on the real API server.
import { createClientNodeApi } from '@k8s-kv/core';
import type { KvTestEnv } from '../../packages/core/test/behaviour/kv-behaviour.ts';
import type { KeyvAdapterTestEnv } from '../../packages/keyv-adapter/test/behaviour.ts';
import { adminKubeConfig, createTestNamespace, grantRole, userKubeConfig, type TestNamespace } from './cluster.ts';

/**
 * A fresh namespace, an admin port, and alice's port as the identity without
 * rights (unless the caller grants her some in the namespace).
 */
export async function realServerEnv(prefix: string): Promise<{ env: KvTestEnv; namespace: TestNamespace }> {
  const namespace = await createTestNamespace(prefix);
  return {
    namespace,
    env: {
      api: createClientNodeApi(adminKubeConfig()),
      namespace: namespace.name,
      missingNamespace: `${namespace.name}-missing`,
      forbiddenApi: createClientNodeApi(userKubeConfig('alice')),
    },
  };
}

/**
 * The environment of the Keyv adapter suites: a fresh namespace where alice
 * may read and write configmaps but not list or watch them, and bob may do nothing.
 */
export async function keyvServerEnv(prefix: string): Promise<{ env: KeyvAdapterTestEnv; namespace: TestNamespace }> {
  const namespace = await createTestNamespace(prefix);
  await grantRole(namespace.name, 'alice', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'patch', 'delete'] }]);
  return {
    namespace,
    env: {
      api: createClientNodeApi(adminKubeConfig()),
      kubeNamespace: namespace.name,
      forbiddenApi: createClientNodeApi(userKubeConfig('bob')),
      noWatchApi: createClientNodeApi(userKubeConfig('alice')),
    },
  };
}
