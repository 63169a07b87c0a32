// The environment the core behaviour suites need, on the real API server.
import { createClientNodeApi } from '@k8s-kv/core';
import type { KvTestEnv } from '../../packages/core/test/behaviour/kv-behaviour.ts';
import { adminKubeConfig, createTestNamespace, userKubeConfig, type TestNamespace } from './cluster.ts';

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
