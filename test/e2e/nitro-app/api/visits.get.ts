// api/visits.get.ts (an example of packages/unstorage-driver/README.md, there as Nuxt's server/api/visits.get.ts)
import { k8sKvDriverOf } from '@k8s-kv/unstorage-driver';

export default defineEventHandler(async () => {
  // One atomic increment in the ConfigMap: concurrent requests on every instance all count.
  const visits = await k8sKvDriverOf(useStorage(), 'data').increment('visits');
  return { visits };
});
