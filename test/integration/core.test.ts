// The core behaviour suite against the real API server (on a bucket of one ConfigMap and on a
// sharded one), and what is particular to sharded buckets.
import { afterAll, beforeAll } from 'vitest';
import { describeKvBehaviour, type KvTestEnv } from '../../packages/core/test/behaviour/kv-behaviour.ts';
import { describeShardedBucket } from '../../packages/core/test/behaviour/sharded-behaviour.ts';
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
describeKvBehaviour('real API server, 4 shards', () => env, { shards: 4 });
describeShardedBucket('real API server', () => env);
