/**
 * @k8s-kv/core/testing: an in-memory Kubernetes API for tests, enforcing the
 * API server's rules (like client-go's fake clientset).
 *
 * @example
 * import { createKV } from '@k8s-kv/core';
 * import { createMemoryApi } from '@k8s-kv/core/testing';
 * const kv = createKV({ bucket: 'test', api: createMemoryApi(), namespace: 'default' });
 * @packageDocumentation
 */
export { createMemoryApi } from './kube/memory-api.ts';
export { countingApi } from './kube/counting-api.ts';
export type { CountingApi } from './kube/counting-api.ts';
export type { MemoryApi, MemoryApiOptions, InjectedFault, ApiVerb } from './kube/memory-api.ts';
export { applyJsonPatch, applyMergePatch, PatchError } from './kube/patch-ops.ts';
export { validateObject, dataKeyError, dns1123SubdomainError, objectDataBytes } from './kube/object-rules.ts';
export { SPLIT_HOOK } from './engine/test-hooks.ts';
export { SPLIT_STEPS, SPLIT_BYTES } from './engine/split.ts';
export type { SplitStep } from './engine/split.ts';
