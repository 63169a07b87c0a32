// A bucket kept in a Secret, against the real API server.
import { afterAll, beforeAll } from 'vitest';
import type { KvTestEnv } from '../../packages/core/test/behaviour/kv-behaviour.ts';
import { describeSecretBucket } from '../../packages/core/test/behaviour/secret-behaviour.ts';
import { grantRole, type TestNamespace } from '../setup/cluster.ts';
import { realServerEnv } from '../setup/kv-env.ts';

let namespace: TestNamespace;
let env: KvTestEnv;
beforeAll(async () => {
  ({ env, namespace } = await realServerEnv('secret'));
  // alice may use ConfigMaps here, not Secrets.
  await grantRole(namespace.name, 'alice', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] }]);
});
afterAll(async () => {
  await namespace?.cleanup();
});

describeSecretBucket('real API server', () => env);
