/**
 * @k8s-kv/core: a key/value store kept in Kubernetes ConfigMaps.
 * @packageDocumentation
 */
export { createKV, validateBucketName } from './kv.ts';
export type {
  KV,
  KVOptions,
  KVValue,
  KVEntry,
  KVPutEntry,
  KVStats,
  KVChangeEvent,
  PutOptions,
  UpdateResult,
  RetryOptions,
  BucketInfo,
  ListBucketsOptions,
  EvictionPolicy,
} from './types.ts';
export { listBuckets } from './buckets.ts';
export * from './errors.ts';
export { LABEL_MANAGED_BY, MANAGED_BY_VALUE, LABEL_APP, LABEL_BUCKET, ANNOTATION_FORMAT, ANNOTATION_SHARDS, ANNOTATION_SHARD } from './engine/labels.ts';
export { createClientNodeApi, loadDefaultKubeConfig, loadKubeConfig, type LoadKubeConfigOptions } from './kube/client-node-api.ts';
export type { ClientNodeApiOptions } from './kube/client-node-api.ts';
export { KubeApiError } from './kube/port.ts';
export type {
  KubeApi,
  KubeObject,
  ObjectKind,
  ObjectMeta,
  ObjectRef,
  ObjectList,
  JsonPatchOp,
  WatchEvent,
  WatchHandle,
  WatchOptions,
  DeletePreconditions,
  PatchOptions,
  ListOptions,
  Selectors,
} from './kube/port.ts';
export { MAX_OBJECT_DATA_BYTES } from './kube/object-rules.ts';
export { resolveNamespace } from './kube/namespace.ts';
export { encodeKey, decodeKey, encodeKeyFull, decodeKeyFull } from './codec/key-codec.ts';
export { shardIndex, shardName, MIN_SHARDS, MAX_SHARDS } from './codec/shard-hash.ts';
export type { EncodedKey, DecodedKey } from './codec/key-codec.ts';
export { encodeEnvelope, decodeEnvelope, decodeEnvelopeHeader, EnvelopeError } from './codec/envelope.ts';
export type { EnvelopeFields, EnvelopeHeader, EncodeOptions } from './codec/envelope.ts';
/** client-node's KubeConfig, re-exported so callers use the same version k8s-kv does. */
export { KubeConfig } from '@kubernetes/client-node';
