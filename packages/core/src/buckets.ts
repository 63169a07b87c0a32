/**
 * `listBuckets`: the k8s-kv buckets of one namespace, with their usage, for
 * operators (the CLI's `buckets` command). One LIST call over the port,
 * selecting objects by the labels every bucket carries.
 */
import { connect } from './connect.ts';
import { LABEL_APP, LABEL_BUCKET, LABEL_MANAGED_BY, MANAGED_BY_VALUE } from './engine/labels.ts';
import { parseRole } from './engine/ownership.ts';
import { callApi } from './engine/retry-policy.ts';
import { DEFAULT_MAX_BYTES } from './engine/bucket.ts';
import { ElasticLayout, partInfo } from './engine/elastic-layout.ts';
import { mergeSnapshots, snapshotOf, type Snapshot } from './engine/snapshot.ts';
import { MAX_OBJECT_DATA_BYTES } from './kube/object-rules.ts';
import type { KubeObject } from './kube/port.ts';
import { bucketStats } from './engine/stats.ts';
import type { BucketInfo, ListBucketsOptions } from './types.ts';
import { checkAppOption, checkNamespaceOption } from './validate.ts';

/**
 * Lists the k8s-kv buckets of a namespace, or of all with `allNamespaces` (objects
 * labelled `app.kubernetes.io/managed-by=k8s-kv`), sorted by namespace and name, decoding each to
 * count live, expired and corrupt entries (the shards or parts of a bucket are counted in its
 * line, not listed apart). Needs `list` on configmaps. The limit of a bucket that splits as it
 * grows is the default `maxBytes` (stores may be created with another).
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
  // The objects of each bucket besides its head (shards, parts), by namespace and bucket.
  const others = new Map<string, KubeObject[]>();
  const where = (ns: string | undefined, bucket: string | undefined): string => `${ns ?? namespace}/${bucket ?? ''}`;
  for (const object of list.items) {
    const role = parseRole(object.metadata.annotations).role;
    if (role !== 'shard' && role !== 'part') continue;
    const at = where(object.metadata.namespace, object.metadata.labels?.[LABEL_BUCKET]);
    const found = others.get(at);
    if (found) found.push(object);
    else others.set(at, [object]);
  }
  const buckets = list.items
    .filter((object) => object.metadata.labels?.[LABEL_BUCKET] === object.metadata.name)
    .map((object): BucketInfo => {
      const role = parseRole(object.metadata.annotations);
      const rest = others.get(where(object.metadata.namespace, object.metadata.name)) ?? [];
      let snapshot: Snapshot;
      let objects = 1;
      let limitBytes = DEFAULT_MAX_BYTES;
      if (role.role === 'head') {
        snapshot = mergeSnapshots(rest.map((shard) => snapshotOf(kind, shard)));
        objects = role.shards;
        limitBytes = MAX_OBJECT_DATA_BYTES * role.shards;
      } else if (role.role === 'elastic') {
        const layout = new ElasticLayout(
          object.metadata.name,
          object.metadata.uid ?? '',
          rest.flatMap((part) => partInfo(part.metadata) ?? []),
        );
        snapshot = mergeSnapshots(rest.filter((part) => layout.live.has(part.metadata.name)).map((part) => snapshotOf(kind, part)));
        objects = layout.size;
      } else {
        snapshot = snapshotOf(kind, object);
      }
      const created = object.metadata.creationTimestamp;
      return {
        name: object.metadata.name,
        namespace: object.metadata.namespace ?? namespace,
        app: object.metadata.labels?.[LABEL_APP],
        ...bucketStats(snapshot, now, objects, limitBytes, role.role === 'head' ? 'sharded' : role.role === 'elastic' ? 'elastic' : 'single'),
        createdAt: created ? new Date(created) : undefined,
        ...(role.role === 'unsupported' ? { unsupportedFormat: role.format } : {}),
      };
    });
  const order = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return buckets.sort((a, b) => order(a.namespace, b.namespace) || order(a.name, b.name));
}
