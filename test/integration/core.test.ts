// The core behaviour suite against the real API server.
import { afterAll, beforeAll } from 'vitest';
import { describeKvBehaviour, type KvTestEnv } from '../../packages/core/test/behaviour/kv-behaviour.ts';
import type { TestNamespace } from '../setup/cluster.ts';
import { realServerEnv } from '../setup/kv-env.ts';

let namespace: TestNamespace;
let env: KvTestEnv;
beforeAll(async () => {
  ({ env, namespace } = await realServerEnv('core'));
});
afterAll(async () => {
  await namespace?.cleanup();
});

describeKvBehaviour('real API server', () => env);
