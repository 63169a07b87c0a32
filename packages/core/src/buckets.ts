/**
 * `listBuckets`: the k8s-kv buckets of one namespace, with their usage, for
 * operators (the CLI's `buckets` command). One LIST call over the port,
 * selecting objects by the labels every bucket carries.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { toKVError, withRetry, type RetryOptions } from './engine/api-errors.ts';
import { isShardedHead } from './engine/bucket-engine.ts';
import { ANNOTATION_SHARD, ANNOTATION_SHARDS, LABEL_APP, LABEL_BUCKET, LABEL_MANAGED_BY, MANAGED_BY_VALUE } from './engine/labels.ts';
import { countExpired, mergeSnapshots, snapshotOf, type Snapshot } from './engine/snapshot.ts';
import { MAX_OBJECT_DATA_BYTES } from './kube/object-rules.ts';
import type { KubeApi, ObjectKind } from './kube/port.ts';
import type { KV, KVStats } from './kv.ts';
import { checkAppOption, checkNamespaceOption, connect } from './options.ts';

/** Options of {@link listBuckets}. */
export interface ListBucketsOptions {
  /** The Kubernetes API port. Default: the client-node implementation over `kubeConfig`. */
  api?: KubeApi;
  /** Credentials and cluster when `api` is not given. Default: `KubeConfig.loadFromDefault()`. */
  kubeConfig?: KubeConfig;
  /** Namespace. Default: resolved as `createKV` resolves it (pod's own, kubeconfig context's, "default"). */
  namespace?: string;
  /** List the buckets of every namespace instead (needs `list` on configmaps cluster-wide, a ClusterRole). */
  allNamespaces?: boolean;
  /** Only buckets of this app (label `k8s-kv.io/app`). Default: every app. */
  app?: string;
  /** Object kind that holds the buckets (default "ConfigMap"). */
  kind?: ObjectKind;
  /** Backoff for transient API failures. */
  retry?: RetryOptions;
  /** Clock in ms since the epoch (default `Date.now`), to tell expired entries. */
  now?: () => number;
}

/** One bucket and its usage (the same figures as {@link KV.stats}). */
export interface BucketInfo extends KVStats {
  /** Bucket (object) name. */
  name: string;
  /** Namespace it lives in. */
  namespace: string;
  /** App it belongs to (label `k8s-kv.io/app`). */
  app: string | undefined;
  /** When the bucket's object was created. */
  createdAt: Date | undefined;
}

/**
 * Lists the k8s-kv buckets of a namespace, or of all with `allNamespaces` (objects
 * labelled `app.kubernetes.io/managed-by=k8s-kv`), sorted by namespace and name, decoding each to
 * count live, expired and corrupt entries (a sharded bucket's shards are counted in its
 * line, not listed apart). Needs `list` on configmaps.
 */
export async function listBuckets(options: ListBucketsOptions = {}): Promise<BucketInfo[]> {
  const kind = options.kind ?? 'ConfigMap';
  checkNamespaceOption(options.namespace);
  if (options.app !== undefined) checkAppOption(options.app);
  const connected = connect(options);
  const namespace = options.allNamespaces === true ? '' : connected.namespace;
  let labelSelector = `${LABEL_MANAGED_BY}=${MANAGED_BY_VALUE}`;
  if (options.app !== undefined) labelSelector += `,${LABEL_APP}=${options.app}`;
  const port = connected.api;
  let list;
  try {
    list = await withRetry(() => port.list(kind, namespace, { labelSelector }), options.retry);
  } catch (error) {
    throw toKVError(error, { verb: 'list', kind, namespace });
  }
  const now = (options.now ?? Date.now)();
  // The shards of sharded buckets, by namespace and bucket: their entries are the bucket's.
  const shards = new Map<string, Snapshot[]>();
  const where = (ns: string | undefined, bucket: string | undefined): string => `${ns ?? namespace}/${bucket ?? ''}`;
  for (const object of list.items) {
    if (object.metadata.annotations?.[ANNOTATION_SHARD] === undefined) continue;
    const at = where(object.metadata.namespace, object.metadata.labels?.[LABEL_BUCKET]);
    const found = shards.get(at);
    if (found) found.push(snapshotOf(kind, object));
    else shards.set(at, [snapshotOf(kind, object)]);
  }
  const buckets = list.items
    .filter((object) => object.metadata.labels?.[LABEL_BUCKET] === object.metadata.name)
    .map((object): BucketInfo => {
      const head = snapshotOf(kind, object);
      const sharded = isShardedHead(head);
      const snapshot = sharded ? mergeSnapshots(shards.get(where(object.metadata.namespace, object.metadata.name)) ?? []) : head;
      const count = sharded ? Number(head.annotations[ANNOTATION_SHARDS]) || 1 : 1;
      const expired = countExpired(snapshot, now);
      const created = object.metadata.creationTimestamp;
      return {
        name: object.metadata.name,
        namespace: object.metadata.namespace ?? namespace,
        app: object.metadata.labels?.[LABEL_APP],
        keys: snapshot.entries.size - expired,
        expired,
        corrupt: snapshot.corrupt.length,
        bytes: snapshot.totalBytes,
        limitBytes: MAX_OBJECT_DATA_BYTES * count,
        shards: count,
        createdAt: created ? new Date(created) : undefined,
      };
    });
  const order = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return buckets.sort((a, b) => order(a.namespace, b.namespace) || order(a.name, b.name));
}
