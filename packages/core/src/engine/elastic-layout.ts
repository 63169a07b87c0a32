/**
 * The layout of an elastic bucket (format 3) from what a LIST or the watch shows
 * of its parts: which parts are live, and which live part holds a key
 * (docs/FORMAT.md section 9.2). Pure.
 */
import { hashSuffix, MAX_PART_DEPTH, partName, shardHash } from '../codec/shard-hash.ts';
import type { ObjectMeta } from '../kube/port.ts';
import { isSealed, parseRole, splitSource, type SplitSource } from './ownership.ts';

/** One part as its metadata describes it. */
export interface PartInfo {
  name: string;
  uid: string;
  depth: number;
  suffix: number;
  headUid: string;
  /** Where a pending part was copied from (absent once activated). */
  splitFrom: SplitSource | undefined;
  /** True while it is being split. */
  sealed: boolean;
}

/** A part's description from its metadata, or undefined for an object that is not a part. */
export function partInfo(metadata: ObjectMeta): PartInfo | undefined {
  const role = parseRole(metadata.annotations);
  if (role.role !== 'part' || metadata.uid === undefined) return undefined;
  return {
    name: metadata.name,
    uid: metadata.uid,
    depth: role.depth,
    suffix: role.suffix,
    headUid: role.headUid,
    splitFrom: splitSource(metadata.annotations),
    sealed: isSealed(metadata.annotations),
  };
}

/** The live parts of one elastic bucket, and the part that holds a key. */
export class ElasticLayout {
  /** Live parts by name. */
  readonly live = new Map<string, PartInfo>();
  /**
   * Parts that would be live but whose range holds live parts deeper down: copies
   * brought back by a split's copier that was slower than the split and the splits
   * after it (docs/FORMAT.md section 9.2). Never read or written; to be deleted.
   */
  readonly shadowed: PartInfo[] = [];
  readonly bucket: string;
  /** The uid of the bucket's head (format 3): parts of another head are left over from an earlier bucket. */
  readonly headUid: string;
  private readonly maxDepth: number;

  /**
   * `headUid`: the uid of the bucket's head (format 3); `parts`: every part object
   * seen (of any head); `gone`: names known to be deleted although `parts` still
   * shows them (a view that has not caught up with this process's own knowledge).
   */
  constructor(bucket: string, headUid: string, parts: Iterable<PartInfo>, gone: ReadonlySet<string> = new Set()) {
    this.bucket = bucket;
    this.headUid = headUid;
    const ours = new Map<string, PartInfo>();
    for (const part of parts) if (part.headUid === headUid && !gone.has(part.name)) ours.set(part.name, part);
    const candidates = new Map<string, PartInfo>();
    for (const part of ours.values()) {
      const from = part.splitFrom;
      // Pending: live once the object it was copied from is gone (the root, here, is: the head is in format 3).
      const parent = from && part.depth > 1 ? ours.get(partName(bucket, part.depth - 1, part.suffix % 2 ** (part.depth - 1))) : undefined;
      if (from && parent?.uid === from.uid) continue;
      candidates.set(part.name, part);
    }
    // A candidate with another candidate inside its range is a copy made after its range was split
    // (only the split of an object of its name, since deleted, makes parts deeper down live): the
    // deeper parts hold the range.
    const shadowed = new Set<string>();
    for (const part of candidates.values()) {
      for (let depth = part.depth - 1; depth >= 1; depth--) {
        const above = partName(bucket, depth, part.suffix % 2 ** depth);
        if (candidates.has(above)) shadowed.add(above);
      }
    }
    let maxDepth = 0;
    for (const part of candidates.values()) {
      if (shadowed.has(part.name)) {
        this.shadowed.push(part);
        continue;
      }
      this.live.set(part.name, part);
      maxDepth = Math.max(maxDepth, part.depth);
    }
    this.maxDepth = Math.min(maxDepth, MAX_PART_DEPTH);
  }

  /** The live part that holds the entry stored under `dataKey`; undefined when no live part covers its hash (the view is incomplete). */
  route(dataKey: string): PartInfo | undefined {
    const hash = shardHash(dataKey);
    for (let depth = 1; depth <= this.maxDepth; depth++) {
      const part = this.live.get(partName(this.bucket, depth, hashSuffix(hash, depth)));
      if (part) return part;
    }
    return undefined;
  }

  /** True when the live parts cover every hash exactly once (no part missing from the view, none doubled). */
  complete(): boolean {
    let covered = 0;
    for (const part of this.live.values()) covered += 2 ** -part.depth;
    return covered === 1;
  }

  /** Number of live parts. */
  get size(): number {
    return this.live.size;
  }
}
