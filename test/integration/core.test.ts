// The core behaviour suite against the real API server (on a default bucket and on a sharded
// one), and what is particular to sharded and to elastic buckets.
import { afterAll, beforeAll } from 'vitest';
import { describeKvBehaviour, type KvTestEnv } from '../../packages/core/test/behaviour/kv-behaviour.ts';
import { describeElasticBucket } from '../../packages/core/test/behaviour/elastic-behaviour.ts';
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
describeElasticBucket('real API server', () => env);
