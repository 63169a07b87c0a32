// A Nitro app that keeps its KV data and its route cache in Kubernetes
// ConfigMaps through @k8s-kv/unstorage-driver, mounted by package name.
// Credentials come from the environment at run time (KUBECONFIG, or the pod's
// service account in a cluster). test/e2e/nitro.test.ts builds it with a
// namespace and bucket names of its own (its config overrides these).
import { defineNitroConfig } from 'nitropack/config';

export default defineNitroConfig({
  compatibilityDate: '2025-01-01',
  preset: 'node-server',
  storage: {
    // useStorage('data'): the app's own keys. Never evicted: a full bucket fails writes.
    data: { driver: '@k8s-kv/unstorage-driver', bucket: 'nitro-app-data' },
    // Nitro's cache (defineCachedEventHandler, cachedFunction) writes under "cache:".
    // A cache: when full, the least recently written entries make room.
    cache: { driver: '@k8s-kv/unstorage-driver', bucket: 'nitro-app-cache', evict: 'oldest' },
  },
});
