/**
 * `update(key, fn)`: a compare-and-swap of one key of one object. `fn` decides
 * on a snapshot; the write carries a JSON-patch `test` of exactly what it
 * decided on (the key's stored text, or its absence), so the server applies it
 * only if the key has not changed since. A lost race means: read again, decide
 * again (up to `maxUpdateAttempts`, with {@link conflictBackoff} between).
 *
 * A write whose answer was lost (the connection broke after sending, a timeout,
 * a 5xx) may or may not have landed; the next read decides, and `fn` never runs
 * again on a state the lost write may have changed:
 * - one of its own values stored: it landed (done). Every value an update writes
 *   carries a random write id (docs/FORMAT.md section 3), so no other writer's
 *   value can look like one of ours;
 * - the value it planned on still stored: it did not land (plan again). A stored
 *   value's bytes never come back once replaced (they carry their write time, and
 *   an update's value its write id);
 * - the key absent, as planned: absence can come back (our write landed, then
 *   someone deleted the key), so only an object unchanged since the plan (same
 *   resourceVersion, or still missing) proves the write did not land;
 * - anything else cannot be decided: a retryable `UnavailableError` says the
 *   update may or may not have been applied.
 * The write itself is never repeated blindly, a create included (a repeated
 * create answers 409 and would hide that the first one landed).
 */
import type { PreparedEntry } from '../codec/entry.ts';
import { type BucketFullError, ConflictError, type KVError, UnavailableError } from '../errors.ts';
import type { JsonPatchOp } from '../kube/port.ts';
import { isStatus, isTransient, mayHaveLanded } from './api-errors.ts';
import { conflictBackoff } from './retry-policy.ts';
import { LayoutChanged } from './layout-changed.ts';
import type { Snapshot } from './snapshot.ts';

/** What an update callback decided. */
export type UpdateDecision = { action: 'keep' } | { action: 'delete' } | { action: 'put'; entry: PreparedEntry };

/** The write that carries a decision, with the test that makes it conditional. */
export type SwapWrite =
  /** The object does not exist: create it holding the key (fails with 409 if someone else created it). */
  | { send: 'create'; entries: Record<string, string> }
  /** A JSON patch testing the object's uid and the key's planned state. */
  | { send: 'json'; ops: JsonPatchOp[] }
  /** The object has no entry map yet (a JSON patch cannot `add` into it): a merge patch pinned to the whole object's resourceVersion. */
  | { send: 'merge'; uid: string; resourceVersion: string; entries: Record<string, string> };

/** The object a compare-and-swap works on (an `ObjectStore`). */
export interface SwapTarget {
  /** The bucket's name, for messages. */
  readonly bucket: string;
  /** The cache's view, if one is running (a stale one only costs a retry). */
  peek(): Snapshot | undefined;
  /** A fresh GET. */
  read(): Promise<Snapshot>;
  /** Throws {@link LayoutChanged} unless the snapshot is of an object that holds entries. */
  holdsEntries(snapshot: Snapshot): void;
  /** The tests that keep a write conditional on the object still being the one the snapshot shows as ours. */
  guardOf(snapshot: Snapshot): JsonPatchOp[];
  /** Sends the write once (never repeated: see above): the answer's state of the key as a snapshot. Throws {@link RaceLost} when a create lost. */
  send(write: SwapWrite, decision: UpdateDecision & { action: 'put' | 'delete' }, dataKey: string): Promise<Snapshot>;
  /**
   * The `test`+`remove` operations that make room for `entry` within the object's
   * budget (eviction.ts), or undefined when it does not fit.
   */
  room(snapshot: Snapshot, entry: PreparedEntry): JsonPatchOp[] | undefined;
  /** True for the API server's refusal of an object too large to store. */
  isTooLarge(error: unknown): boolean;
  /** The error for a put that does not fit. */
  full(entries: PreparedEntry[], cause?: unknown): Promise<BucketFullError>;
  /** Turns a failure that is none of the above into a typed error. */
  typed(error: unknown): KVError;
}

/** Someone created the object between our read and our create. */
export class RaceLost extends Error {}

/**
 * What one `update` call has done so far. It travels with the call when the key
 * moves to another object under it (a split), so that a lost answer is still
 * resolved against every write this call sent.
 */
export interface SwapState {
  /** Every value this update sent (each carries a random write id). */
  sent: Set<string>;
  /** After a write whose answer was lost: the state it was planned on (the key's stored text, and the object's resourceVersion; undefined: absent). */
  lostAnswer?: { planned: string | undefined; objectRv: string | undefined; cause: unknown } | undefined;
  /** Attempts made (across objects), for `maxUpdateAttempts`. */
  attempts: number;
  /** The last failure, for the ConflictError. */
  lastError?: unknown;
}

/** The state of an update that has not started. */
export function newSwapState(): SwapState {
  return { sent: new Set(), attempts: 0 };
}

/** JSON pointer of a data key in the object's entry map. */
export function pointer(field: string, dataKey: string): string {
  return `/${field}/${dataKey.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

/**
 * The conditional write of a decision made on `snapshot` (none for `keep`, or
 * deleting an absent key). `guard`: the tests that the object is still the one
 * the snapshot shows as ours; `room`: the removals that make room for a put
 * (test-guarded too; only an object with entries has any).
 */
export function planSwap(
  snapshot: Snapshot,
  guard: JsonPatchOp[],
  field: string,
  dataKey: string,
  decision: UpdateDecision,
  current: string | undefined,
  room: JsonPatchOp[] = [],
): SwapWrite | undefined {
  if (decision.action === 'keep' || (decision.action === 'delete' && current === undefined)) return undefined;
  if (decision.action === 'put' && !snapshot.exists) return { send: 'create', entries: { [dataKey]: decision.entry.b64 } };
  const path = pointer(field, dataKey);
  if (current !== undefined) {
    return {
      send: 'json',
      ops: [
        ...guard,
        ...room,
        { op: 'test', path, value: current },
        decision.action === 'put' ? { op: 'replace', path, value: decision.entry.b64 } : { op: 'remove', path },
      ],
    };
  }
  if (decision.action !== 'put') return undefined;
  // New key: `test` with null passes only while the key is absent.
  if (snapshot.hasEntryMap)
    return { send: 'json', ops: [...guard, ...room, { op: 'test', path, value: null }, { op: 'add', path, value: decision.entry.b64 }] };
  return { send: 'merge', uid: snapshot.uid!, resourceVersion: snapshot.resourceVersion!, entries: { [dataKey]: decision.entry.b64 } };
}

/**
 * Runs the compare-and-swap loop. `decide` sees the current snapshot and returns
 * what to do; it runs again after each lost race. Resolves to a snapshot holding
 * the key as it is after the update.
 */
export async function compareAndSwap(
  target: SwapTarget,
  field: string,
  key: string,
  dataKey: string,
  decide: (snapshot: Snapshot) => Promise<UpdateDecision>,
  maxAttempts: number,
  state: SwapState = newSwapState(),
): Promise<Snapshot> {
  // `state.sent`: every value this update sent. Each carries a random write id, so no other
  // writer can store the same bytes: finding one of them stored means that write landed.
  for (let first = true; state.attempts < maxAttempts; state.attempts++, first = false) {
    const { sent, lostAnswer } = state;
    if (state.attempts > 0 && !lostAnswer) await conflictBackoff(state.attempts);
    // The first attempt on this object may plan on the cache: the patch tests the value, so a stale plan only costs a retry.
    const cached = first && !lostAnswer ? target.peek() : undefined;
    const snapshot = cached ?? (await target.read());
    target.holdsEntries(snapshot);
    const stored = snapshot.entries.get(key);
    // A write of ours landed although its answer was lost: done (fn must not be applied twice).
    if (stored && sent.has(stored.b64)) return snapshot;
    if (lostAnswer) {
      // Unchanged since the plan: the lost write did not land, so planning again is safe.
      // Changed by someone else: the lost write may have landed and been overwritten since.
      const unchanged =
        stored?.b64 === lostAnswer.planned &&
        (lostAnswer.planned !== undefined || (snapshot.exists ? snapshot.resourceVersion : undefined) === lostAnswer.objectRv);
      if (!unchanged) {
        throw new UnavailableError(
          `update("${key}") may or may not have been applied in bucket "${target.bucket}": the connection to the API server broke while its write was in flight, and the key has been changed by another writer since. Read the key to decide whether to run the update again.`,
          lostAnswer.cause,
        );
      }
      state.lostAnswer = undefined;
    }
    const decision = await decide(snapshot);
    const room = decision.action === 'put' ? target.room(snapshot, decision.entry) : [];
    if (room === undefined && decision.action === 'put') {
      // Does not fit: on the cache's view (which may be behind) look again; on a GET it does not.
      if (snapshot === cached) continue;
      throw await target.full([decision.entry], undefined);
    }
    const write = planSwap(snapshot, target.guardOf(snapshot), field, dataKey, decision, stored?.b64, room);
    if (!write || decision.action === 'keep') return snapshot;
    if (decision.action === 'put') sent.add(decision.entry.b64);
    try {
      return await target.send(write, decision, dataKey);
    } catch (error) {
      state.lastError = error;
      if (error instanceof LayoutChanged) {
        // The key moved (a split) or the object is sealed: the router routes again with this state.
        state.attempts++;
        throw error;
      }
      if (target.isTooLarge(error) && decision.action === 'put') throw await target.full([decision.entry], error);
      // 422 from a JSON patch is a failed `test` (the server does not say more); 409 a stale resourceVersion.
      if (error instanceof RaceLost || isStatus(error, 409) || isStatus(error, 422) || isStatus(error, 404)) continue;
      if (isTransient(error)) {
        // The write may or may not have happened: the next read decides (above).
        if (mayHaveLanded(error)) state.lostAnswer = { planned: stored?.b64, objectRv: snapshot.exists ? snapshot.resourceVersion : undefined, cause: error };
        continue;
      }
      throw target.typed(error);
    }
  }
  throw new ConflictError(
    `update("${key}") lost to concurrent writers ${maxAttempts} times in bucket "${target.bucket}"; try again later.`,
    key,
    state.lastError,
  );
}
