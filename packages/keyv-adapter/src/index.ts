/**
 * @k8s-kv/keyv-adapter: a Keyv storage adapter (Keyv 5 and 6) keeping a cache
 * in a Kubernetes ConfigMap through `@k8s-kv/core`. Works with cache-manager 7
 * and cacheable 2.
 * @packageDocumentation
 */
export { KeyvK8sKv } from './adapter.ts';
export type { KeyvContract, KeyvK8sKvCapabilities, KeyvK8sKvCoreOptions, KeyvK8sKvEntry, KeyvK8sKvOptions, KeyvK8sKvOpts } from './adapter.ts';
export { createKeyv, enableIterator } from './create.ts';
export type { CreateKeyvOptions } from './create.ts';
export { KeyvK8sKv as default } from './adapter.ts';
