/**
 * Which objects are k8s-kv's, and what each one is: the one place that reads
 * the labels and annotations of docs/FORMAT.md (sections 1 and 8). Used by the
 * engine before it reads or writes an object, by the router to learn a bucket's
 * layout, and by `listBuckets`.
 */
import { isShardCount, MAX_PART_DEPTH } from '../codec/shard-hash.ts';
import { ForeignObjectError, UnsupportedFormatError } from '../errors.ts';
import type { JsonPatchOp, KubeObject, ObjectKind } from '../kube/port.ts';
import {
  ANNOTATION_FORMAT,
  ANNOTATION_HEAD_UID,
  ANNOTATION_PART,
  ANNOTATION_SEALED,
  ANNOTATION_SHARD,
  ANNOTATION_SHARDS,
  ANNOTATION_SPLIT_FROM,
  ELASTIC_FORMAT_VERSION,
  FORMAT_VERSION,
  LABEL_APP,
  LABEL_BUCKET,
  LABEL_MANAGED_BY,
  MANAGED_BY_VALUE,
  SHARDED_FORMAT_VERSION,
} from './labels.ts';

/** What a k8s-kv object is, as its annotations say. */
export type ObjectRole =
  /** Format 1: a bucket kept in this one object. */
  | { role: 'bucket' }
  /** Format 2: the head of a sharded bucket (no entries of its own). */
  | { role: 'head'; shards: number }
  /** Format 2: shard `index` of a bucket of `count` shards. */
  | { role: 'shard'; index: number; count: number }
  /** Format 3: the head of an elastic bucket whose root was split (no entries of its own). */
  | { role: 'elastic' }
  /** Format 3: part (depth, suffix) of the elastic bucket whose head has uid `headUid`. */
  | { role: 'part'; depth: number; suffix: number; headUid: string };

/** A bucket's identity: what the objects it owns must be labelled with. */
export interface BucketIdentity {
  kind: ObjectKind;
  namespace: string;
  bucket: string;
  app: string;
}

/** Labels every object of a bucket carries. */
export function bucketLabels(bucket: string, app: string): Record<string, string> {
  return { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_APP]: app, [LABEL_BUCKET]: bucket };
}

/** Label selector matching every object of a bucket (its own and its shards). */
export function bucketSelector(bucket: string): string {
  return `${LABEL_MANAGED_BY}=${MANAGED_BY_VALUE},${LABEL_BUCKET}=${bucket}`;
}

/** Annotations of a new object in a role. */
export function roleAnnotations(role: ObjectRole): Record<string, string> {
  switch (role.role) {
    case 'bucket':
      return { [ANNOTATION_FORMAT]: FORMAT_VERSION };
    case 'head':
      return { [ANNOTATION_FORMAT]: SHARDED_FORMAT_VERSION, [ANNOTATION_SHARDS]: String(role.shards) };
    case 'shard':
      return { [ANNOTATION_FORMAT]: SHARDED_FORMAT_VERSION, [ANNOTATION_SHARD]: `${role.index}/${role.count}` };
    case 'elastic':
      return { [ANNOTATION_FORMAT]: ELASTIC_FORMAT_VERSION };
    case 'part':
      return { [ANNOTATION_FORMAT]: ELASTIC_FORMAT_VERSION, [ANNOTATION_PART]: `${role.depth}/${role.suffix}`, [ANNOTATION_HEAD_UID]: role.headUid };
  }
}

/** Where a pending part was copied from: `k8s-kv.io/split-from`, `<uid>@<resourceVersion>`. */
export interface SplitSource {
  uid: string;
  resourceVersion: string;
}

/** The `k8s-kv.io/split-from` of a pending part, or undefined for a live one (or an unreadable value). */
export function splitSource(annotations: Record<string, string> | undefined): SplitSource | undefined {
  const raw = annotations?.[ANNOTATION_SPLIT_FROM];
  const at = raw?.lastIndexOf('@') ?? -1;
  if (!raw || at <= 0 || at === raw.length - 1) return undefined;
  return { uid: raw.slice(0, at), resourceVersion: raw.slice(at + 1) };
}

/** True when the object is sealed for a split (docs/FORMAT.md section 9.4): writes to it fail until the split is over. */
export function isSealed(annotations: Record<string, string> | undefined): boolean {
  return annotations?.[ANNOTATION_SEALED] !== undefined;
}

/** A role, or a format this version does not know (`format` names it, for {@link UnsupportedFormatError}). */
export type DeclaredRole = ObjectRole | { role: 'unsupported'; format: string };

/**
 * The role annotations declare. No format annotation is format 1 (objects
 * written before the annotation existed).
 */
export function parseRole(annotations: Record<string, string> | undefined): DeclaredRole {
  const format = annotations?.[ANNOTATION_FORMAT];
  if (format === undefined || format === FORMAT_VERSION) return { role: 'bucket' };
  if (format === ELASTIC_FORMAT_VERSION) {
    const part = annotations?.[ANNOTATION_PART];
    if (part === undefined) return { role: 'elastic' };
    const match = /^(\d+)\/(\d+)$/.exec(part);
    const depth = Number(match?.[1]);
    const suffix = Number(match?.[2]);
    const headUid = annotations?.[ANNOTATION_HEAD_UID];
    if (!match || depth < 1 || depth > MAX_PART_DEPTH || suffix >= 2 ** depth || !headUid) {
      return { role: 'unsupported', format: `3 (with ${ANNOTATION_PART}=${JSON.stringify(part)})` };
    }
    return { role: 'part', depth, suffix, headUid };
  }
  if (format !== SHARDED_FORMAT_VERSION) return { role: 'unsupported', format };
  const shard = annotations?.[ANNOTATION_SHARD];
  if (shard === undefined) {
    const raw = annotations?.[ANNOTATION_SHARDS];
    const shards = Number(raw);
    if (!isShardCount(shards)) return { role: 'unsupported', format: `2 (with ${ANNOTATION_SHARDS}=${JSON.stringify(raw ?? '')})` };
    return { role: 'head', shards };
  }
  const match = /^(\d+)\/(\d+)$/.exec(shard);
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (!match || !isShardCount(count) || index >= count) return { role: 'unsupported', format: `2 (with ${ANNOTATION_SHARD}=${JSON.stringify(shard)})` };
  return { role: 'shard', index, count };
}

/** True when annotations are those of a head without entries: a sharded bucket's (format 2) or a split elastic bucket's (format 3), valid or not. */
export function declaresEntrylessHead(annotations: Record<string, string> | undefined): boolean {
  const format = annotations?.[ANNOTATION_FORMAT];
  return (
    (format === SHARDED_FORMAT_VERSION && annotations?.[ANNOTATION_SHARD] === undefined) ||
    (format === ELASTIC_FORMAT_VERSION && annotations?.[ANNOTATION_PART] === undefined)
  );
}

/** Why `object` is not k8s-kv's for this bucket and app, or undefined when it is. */
function foreignReason(object: KubeObject, owner: BucketIdentity): { why: string; ownerApp?: string } | undefined {
  const labels = object.metadata.labels ?? {};
  if (labels[LABEL_MANAGED_BY] !== MANAGED_BY_VALUE) return { why: `it has no label ${LABEL_MANAGED_BY}=${MANAGED_BY_VALUE}` };
  if (labels[LABEL_BUCKET] !== owner.bucket) return { why: `its label ${LABEL_BUCKET} is not "${owner.bucket}"` };
  if (labels[LABEL_APP] !== owner.app) return { why: `it belongs to app "${labels[LABEL_APP] ?? ''}", not "${owner.app}"`, ownerApp: labels[LABEL_APP] ?? '' };
  return undefined;
}

/**
 * The role of an object of this bucket. Throws {@link ForeignObjectError} unless
 * k8s-kv created it for this bucket and app, and {@link UnsupportedFormatError}
 * when it declares a format (or layout) this version does not know.
 */
export function checkOwnership(object: KubeObject, owner: BucketIdentity): ObjectRole {
  const foreign = foreignReason(object, owner);
  if (foreign) throw new ForeignObjectError(owner.kind, object.metadata.name, owner.namespace, foreign.why, foreign.ownerApp);
  const role = parseRole(object.metadata.annotations);
  if (role.role === 'unsupported') throw new UnsupportedFormatError(owner.kind, owner.bucket, owner.namespace, role.format);
  return role;
}

/** JSON pointer of a label or annotation. */
function metadataPointer(map: 'labels' | 'annotations', key: string): string {
  return `/metadata/${map}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

/** The annotations that say what an object is; a write tests each of them (a missing one as absent). */
const ROLE_ANNOTATIONS = [ANNOTATION_FORMAT, ANNOTATION_SHARD, ANNOTATION_SHARDS, ANNOTATION_PART, ANNOTATION_HEAD_UID];

/**
 * JSON-patch `test`s that hold while the object is still the one k8s-kv checked:
 * its uid, the bucket's labels, the annotations that gave it its role, and that
 * it is not sealed for a split. Every JSON patch k8s-kv sends starts with them, so
 * a write to an object that has been relabelled, given another format, replaced,
 * or sealed fails at the server (422) and changes nothing.
 */
export function ownershipTests(owner: BucketIdentity, uid: string | undefined, annotations: Record<string, string> | undefined): JsonPatchOp[] {
  const tests: JsonPatchOp[] = [{ op: 'test', path: '/metadata/uid', value: uid }];
  for (const [key, value] of Object.entries(bucketLabels(owner.bucket, owner.app))) tests.push({ op: 'test', path: metadataPointer('labels', key), value });
  // A test inside a map that does not exist fails: without annotations, test that there are none.
  if (!annotations) tests.push({ op: 'test', path: '/metadata/annotations', value: null });
  else {
    for (const key of ROLE_ANNOTATIONS) tests.push({ op: 'test', path: metadataPointer('annotations', key), value: annotations[key] ?? null });
    tests.push({ op: 'test', path: metadataPointer('annotations', ANNOTATION_SEALED), value: null });
  }
  return tests;
}
