/**
 * A bucket's usage from its snapshot: the one computation behind `kv.stats()`
 * and `listBuckets()`. Pure.
 */
import type { KVStats } from '../types.ts';
import { countExpired, type Snapshot } from './snapshot.ts';

/** Usage of a bucket whose entries are `snapshot` (all its objects merged), held in `objects` objects, that may hold `limitBytes`, at `now`. */
export function bucketStats(snapshot: Snapshot, now: number, objects: number, limitBytes: number, layout: KVStats['layout']): KVStats {
  const expired = countExpired(snapshot, now);
  return {
    keys: snapshot.entries.size - expired,
    expired,
    corrupt: snapshot.corrupt.length,
    bytes: snapshot.totalBytes,
    limitBytes,
    shards: objects,
    layout,
  };
}
