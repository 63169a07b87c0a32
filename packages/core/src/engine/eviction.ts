/**
 * What a write to ONE object must take out of it, decided before the write is
 * sent. Pure: given the object as a snapshot shows it, the entries being
 * written, the object's budget, the eviction policy and the time, it returns
 * the entries to remove (each with the stored text its JSON-patch `test` must
 * compare, so that a plan made on an old view never removes a newer value), or
 * that the write does not fit.
 *
 * The rules, in order:
 * 1. **Over the budget** (bytes or entries, counted after the write): every
 *    expired entry goes first (oldest expiry first). Still over: without a
 *    policy the write does not fit (`BucketFullError`); with one, live entries
 *    go in the policy's order ({@link EvictionPolicy}) until
 *    {@link EVICTION_HEADROOM} of its budget is free, so that the next writes do not
 *    each have to evict again. The entries being written are never removed.
 * 2. **Within the budget** (active expiry): when expired entries hold more than
 *    {@link EXPIRED_TRIGGER} of the object's bytes after the write, the write
 *    also removes expired entries (oldest expiry first) until they hold at most
 *    {@link EXPIRED_TARGET}, at most {@link OPTIONAL_REMOVAL_TEXT} of `test`
 *    text per write. In an object that receives writes, expired entries never
 *    hold more than a quarter of its bytes for long; removing them in batches
 *    (not one per write) keeps concurrent writers from planning to remove the
 *    same entry on every write.
 *
 * What is known of an entry is what its envelope holds: when it was written
 * and when it expires. When it was last READ is not known (reads are served
 * from each pod's own cache and leave no trace in the object).
 */
import { MAX_OBJECT_DATA_BYTES } from '../kube/object-rules.ts';
import { entrySize, isExpired, type Snapshot, type StoredEntry } from './snapshot.ts';

/**
 * Which live entries a full object evicts first:
 * - `oldest`: the least recently written (modified time), whatever their expiry;
 * - `expiring`: the closest to their expiry (entries without one last), then
 *   the least recently written.
 * Expired entries always go before either.
 */
export type EvictionPolicy = 'oldest' | 'expiring';

/** The policies {@link EvictionPolicy} names, for validation and messages. */
export const EVICTION_POLICIES: readonly EvictionPolicy[] = ['oldest', 'expiring'];

/** An object's budget: its entries may hold at most `bytes` (as the API server counts them) and `entries` entries. */
export interface ObjectBudget {
  bytes: number;
  entries?: number | undefined;
}

/** An entry being written: its data key, envelope bytes, and the length of its base64 text. */
export interface IncomingEntry {
  dataKey: string;
  size: number;
  b64: string;
}

/** An entry the write removes, with the stored text its `test` compares. */
export interface Removal {
  dataKey: string;
  key: string;
  b64: string;
  size: number;
  /** True for an expired entry, false for a live one evicted by the policy. */
  expired: boolean;
}

/** Usage of an object: now, and as the write would leave it without removals. */
export interface Usage {
  currentBytes: number;
  attemptedBytes: number;
  limitBytes: number;
  currentEntries: number;
  attemptedEntries: number;
  /** The entry budget, when there is one. */
  limitEntries: number | undefined;
}

/** A plan: the removals that make the write fit, or why it does not. */
export type WritePlan =
  | { fits: true; removals: Removal[]; usage: Usage }
  | {
      fits: false;
      /** `budget`: over the budget and nothing (more) may be evicted; `patch`: the removals it needs do not fit in one patch. */
      why: 'budget' | 'patch';
      usage: Usage;
    };

/** Expired entries are removed by a write that leaves them holding more than this fraction of the object's bytes... */
export const EXPIRED_TRIGGER = 1 / 4;
/** ...down to this fraction. */
export const EXPIRED_TARGET = 1 / 8;
/**
 * A full object evicts live entries until this fraction of its budget (bytes, and
 * entries; rounded down) is free, so that the next writes need not evict again.
 */
export const EVICTION_HEADROOM = 1 / 16;
/** Most `test` text (base64 characters) a write spends on removals it does not need (active expiry). */
export const OPTIONAL_REMOVAL_TEXT = 512 * 1024;
/**
 * Most text (base64 of `test`s plus the values written) of one patch. The API
 * server takes request bodies up to 3 MiB; a write that needs more removals
 * than fit in that does not fit.
 */
export const MAX_PATCH_TEXT = 2.5 * 1024 * 1024;
/** Most operations of one JSON patch the planner fills (the API server takes 10,000), leaving room for the ownership tests. */
export const MAX_PATCH_OPS = 9_900;

/** What {@link planWrite} needs. */
export interface PlanInput {
  /** The object as the plan sees it (the cache's view, or a GET). */
  snapshot: Snapshot;
  /** The entries being written (later ones for the same data key win). */
  incoming: readonly IncomingEntry[];
  /** The object's budget (its bytes are capped at the API server's 1 MiB); none: only that limit. */
  budget?: ObjectBudget | undefined;
  /** The eviction policy; none: a write over the budget does not fit. */
  policy?: EvictionPolicy | undefined;
  /** The time, ms since the epoch (what is expired). */
  now: number;
}

/** Orders entries for eviction under a policy (the first goes first). */
export function evictionOrder(policy: EvictionPolicy): (a: StoredEntry, b: StoredEntry) => number {
  const byWrite = (a: StoredEntry, b: StoredEntry): number =>
    a.header.modifiedAt - b.header.modifiedAt || (a.dataKey < b.dataKey ? -1 : a.dataKey > b.dataKey ? 1 : 0);
  if (policy === 'oldest') return byWrite;
  return (a, b) => (a.header.expiresAt ?? Number.POSITIVE_INFINITY) - (b.header.expiresAt ?? Number.POSITIVE_INFINITY) || byWrite(a, b);
}

/** Expired entries, oldest expiry first (then by data key: every planner picks the same ones). */
export function expiredEntries(snapshot: Snapshot, now: number, except?: ReadonlySet<string>): StoredEntry[] {
  const expired: StoredEntry[] = [];
  for (const entry of snapshot.byDataKey.values()) if (isExpired(entry, now) && !except?.has(entry.dataKey)) expired.push(entry);
  return expired.sort((a, b) => a.header.expiresAt! - b.header.expiresAt! || (a.dataKey < b.dataKey ? -1 : a.dataKey > b.dataKey ? 1 : 0));
}

/** Removals collected for one patch, within its limits of operations and text. */
export class RemovalBatch {
  readonly removals: Removal[] = [];
  private text: number;
  private readonly maxRemovals: number;

  /** `opsUsed` and `textUsed`: what the rest of the patch takes already. */
  constructor(opsUsed = 0, textUsed = 0) {
    this.text = textUsed;
    this.maxRemovals = Math.max(0, Math.floor((MAX_PATCH_OPS - opsUsed) / 2)); // a `test` and a `remove` each
  }

  /** Adds the entry's removal unless the patch (or `textCap` of text) would overflow; false when it did not. */
  add(entry: StoredEntry, expired: boolean, textCap = MAX_PATCH_TEXT): boolean {
    if (this.removals.length >= this.maxRemovals || this.text + entry.b64.length > textCap) return false;
    this.text += entry.b64.length;
    this.removals.push({ dataKey: entry.dataKey, key: entry.key, b64: entry.b64, size: entrySize(entry), expired });
    return true;
  }
}

/** Bytes a corrupt `binaryData` entry takes (its stored text decoded); 0 when unknown (a hand-made `data` entry). */
function corruptSize(snapshot: Snapshot, dataKey: string): number {
  const text = snapshot.corruptText?.get(dataKey);
  if (text === undefined) return 0;
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  return (text.length / 4) * 3 - padding;
}

/** Plans a write to one object: what it removes, or that it does not fit. See the rules above. */
export function planWrite(input: PlanInput): WritePlan {
  const { snapshot, budget, policy, now } = input;
  const limitBytes = Math.min(budget?.bytes ?? MAX_OBJECT_DATA_BYTES, MAX_OBJECT_DATA_BYTES);
  const limitEntries = budget?.entries;
  const incoming = new Map<string, IncomingEntry>();
  for (const entry of input.incoming) incoming.set(entry.dataKey, entry);

  const currentEntries = snapshot.byDataKey.size + snapshot.corruptByDataKey.size;
  let bytes = snapshot.totalBytes;
  let entries = currentEntries;
  let incomingText = 0;
  for (const entry of incoming.values()) {
    incomingText += entry.b64.length;
    const old = snapshot.byDataKey.get(entry.dataKey);
    if (old) bytes += entry.size - entrySize(old);
    else if (snapshot.corruptByDataKey.has(entry.dataKey)) bytes += entry.size - corruptSize(snapshot, entry.dataKey);
    else {
      bytes += entry.size;
      entries += 1;
    }
  }
  const usage: Usage = { currentBytes: snapshot.totalBytes, attemptedBytes: bytes, limitBytes, currentEntries, attemptedEntries: entries, limitEntries };
  const over = (targetBytes: number, targetEntries: number | undefined): boolean =>
    bytes > targetBytes || (targetEntries !== undefined && entries > targetEntries);

  const batch = new RemovalBatch(incoming.size, incomingText);
  /** Set when a removal the rules wanted did not fit in the patch. */
  let patchFull = false;
  const take = (entry: StoredEntry, expired: boolean, textCap?: number): boolean => {
    if (!batch.add(entry, expired, textCap)) {
      patchFull = true;
      return false;
    }
    bytes -= entrySize(entry);
    entries -= 1;
    return true;
  };
  const expired = expiredEntries(snapshot, now, new Set(incoming.keys()));

  if (over(limitBytes, limitEntries)) {
    // 1. Over the budget: expired entries first, all of them (the object is full).
    for (const entry of expired) if (!take(entry, true)) break;
    if (over(limitBytes, limitEntries) && policy) {
      const targetBytes = limitBytes - Math.floor(limitBytes * EVICTION_HEADROOM);
      const targetEntries = limitEntries === undefined ? undefined : limitEntries - Math.floor(limitEntries * EVICTION_HEADROOM);
      const live = [...snapshot.byDataKey.values()].filter((e) => !incoming.has(e.dataKey) && !isExpired(e, now)).sort(evictionOrder(policy));
      for (const entry of live) {
        if (!over(targetBytes, targetEntries) || !take(entry, false)) break;
      }
    }
    // Not even every removal the rules allow makes room, or those it needs do not fit in one patch.
    if (over(limitBytes, limitEntries)) return { fits: false, why: patchFull ? 'patch' : 'budget', usage };
    return { fits: true, removals: batch.removals, usage };
  }

  // 2. Within the budget: active expiry, when expired entries hold too much of the object.
  let expiredBytes = expired.reduce((sum, e) => sum + entrySize(e), 0);
  if (expiredBytes > bytes * EXPIRED_TRIGGER) {
    for (const entry of expired) {
      if (expiredBytes <= bytes * EXPIRED_TARGET || !take(entry, true, OPTIONAL_REMOVAL_TEXT + incomingText)) break;
      expiredBytes -= entrySize(entry);
    }
  }
  return { fits: true, removals: batch.removals, usage };
}
