/**
 * The labels and annotations k8s-kv puts on its objects (docs/FORMAT.md).
 */

/** Label every k8s-kv object carries: `app.kubernetes.io/managed-by=k8s-kv`. */
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
/** Value of {@link LABEL_MANAGED_BY}. */
export const MANAGED_BY_VALUE = 'k8s-kv';
/** Label naming the app that owns the bucket. */
export const LABEL_APP = 'k8s-kv.io/app';
/** Label naming the bucket (on the bucket's object and on each of its shards). */
export const LABEL_BUCKET = 'k8s-kv.io/bucket';
/** Annotation recording the storage format version. */
export const ANNOTATION_FORMAT = 'k8s-kv.io/format';
/** Format of a bucket kept in one object (docs/FORMAT.md). */
export const FORMAT_VERSION = '1';
/** Format of a bucket spread over shard objects: a head object without entries, and `<bucket>.shard-<i>` objects. */
export const SHARDED_FORMAT_VERSION = '2';
/** Annotation of a sharded bucket's head: how many shards it has. */
export const ANNOTATION_SHARDS = 'k8s-kv.io/shards';
/** Annotation of a shard object: `<index>/<shards>`. */
export const ANNOTATION_SHARD = 'k8s-kv.io/shard';
/** Format of an elastic bucket: a head without entries, and parts that split as they grow (docs/FORMAT.md section 9). */
export const ELASTIC_FORMAT_VERSION = '3';
/** Annotation of an elastic bucket's part: `<depth>/<suffix>`. */
export const ANNOTATION_PART = 'k8s-kv.io/part';
/** Annotation of an elastic bucket's part: the uid of the head it belongs to. */
export const ANNOTATION_HEAD_UID = 'k8s-kv.io/head-uid';
/** Annotation of a pending part: `<uid>@<resourceVersion>` of the object it was copied from. */
export const ANNOTATION_SPLIT_FROM = 'k8s-kv.io/split-from';
/** Annotation of an object being split: when the split began (RFC 3339). Writes test that it is absent. */
export const ANNOTATION_SEALED = 'k8s-kv.io/sealed';
