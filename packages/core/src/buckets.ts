/**
 * `listBuckets`: the k8s-kv buckets of one namespace, with their usage, for
 * operators (the CLI's `buckets` command). One LIST call over the port,
 * selecting objects by the labels every bucket carries.
 */
import { connect } from './connect.ts';
import { LABEL_APP, LABEL_BUCKET, LABEL_MANAGED_BY, MANAGED_BY_VALUE } from './engine/labels.ts';
import { parseRole } from './engine/ownership.ts';
import { callApi } from './engine/retry-policy.ts';
import { mergeSnapshots, snapshotOf, type Snapshot } from './engine/snapshot.ts';
import { bucketStats } from './engine/stats.ts';
import type { BucketInfo, ListBucketsOptions } from './types.ts';
import { checkAppOption, checkNamespaceOption } from './validate.ts';

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
  const list = await callApi({ verb: 'list', kind, namespace }, options.retry, () => port.list(kind, namespace, { labelSelector }));
  const now = (options.now ?? Date.now)();
  // The shards of sharded buckets, by namespace and bucket: their entries are the bucket's.
  const shards = new Map<string, Snapshot[]>();
  const where = (ns: string | undefined, bucket: string | undefined): string => `${ns ?? namespace}/${bucket ?? ''}`;
  for (const object of list.items) {
    if (parseRole(object.metadata.annotations).role !== 'shard') continue;
    const at = where(object.metadata.namespace, object.metadata.labels?.[LABEL_BUCKET]);
    const found = shards.get(at);
    if (found) found.push(snapshotOf(kind, object));
    else shards.set(at, [snapshotOf(kind, object)]);
  }
  const buckets = list.items
    .filter((object) => object.metadata.labels?.[LABEL_BUCKET] === object.metadata.name)
    .map((object): BucketInfo => {
      const role = parseRole(object.metadata.annotations);
      const snapshot = role.role === 'head' ? mergeSnapshots(shards.get(where(object.metadata.namespace, object.metadata.name)) ?? []) : snapshotOf(kind, object);
      const created = object.metadata.creationTimestamp;
      return {
        name: object.metadata.name,
        namespace: object.metadata.namespace ?? namespace,
        app: object.metadata.labels?.[LABEL_APP],
        ...bucketStats(snapshot, now, role.role === 'head' ? role.shards : 1),
        createdAt: created ? new Date(created) : undefined,
        ...(role.role === 'unsupported' ? { unsupportedFormat: role.format } : {}),
      };
    });
  const order = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return buckets.sort((a, b) => order(a.namespace, b.namespace) || order(a.name, b.name));
}
