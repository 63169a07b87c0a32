/**
 * The background sweep of ONE object's expired entries (active expiry for
 * objects that receive no writes; writes remove expired entries themselves,
 * eviction.ts). It runs in every store whose watch cache of the object runs,
 * in every pod, with no coordination between them, and still sends at most
 * one sweep per half period per object, however many pods there are:
 *
 * - each store looks at its CACHED view at random intervals of 1/4 to 1/2 of
 *   the period (no API call: looking is free);
 * - it sweeps only when the oldest expired entry expired at least half a
 *   period ago, and then removes every expired entry in one JSON patch, each
 *   guarded by a `test` of its stored text (a newer value is never removed);
 * - after a sweep, every expired entry left expired after it, so the next
 *   sweep of the object, by any pod, is at least half a period later. Another
 *   pod's sweep reaches the others' caches through the watch within
 *   milliseconds; a pod that looks in that window sends a patch whose `test`s
 *   fail, and that changes nothing.
 *
 * So an expired entry of an idle object is removed within one period of its
 * expiry (half a period to become due, at most half a period until a store
 * looks), as long as some store has the bucket's cache running. A coordination
 * Lease would only save those rare refused patches, at the price of an RBAC
 * rule on `leases` and a write per renewal: not worth it.
 *
 * The timer is unref'd (it never keeps a process alive), starts only with the
 * cache (a store that only writes never sweeps), and stops with the store.
 */
import { expiredEntries, RemovalBatch, type Removal } from './eviction.ts';
import type { Snapshot } from './snapshot.ts';

/** Default sweep period (option `sweepInterval`): expired entries of an idle bucket are removed within this time. */
export const DEFAULT_SWEEP_INTERVAL_MS = 60_000;

/** Shortest sweep period accepted (the option `sweepInterval`). */
export const MIN_SWEEP_INTERVAL_MS = 100;

/**
 * The removals of a sweep of `snapshot` at `now` with period `periodMs`: none
 * unless the oldest expired entry expired at least half a period ago; then every
 * expired entry, oldest expiry first, as many as one patch holds. Pure.
 */
export function planSweep(snapshot: Snapshot, now: number, periodMs: number): Removal[] {
  const expired = expiredEntries(snapshot, now);
  const oldest = expired[0];
  if (!oldest || oldest.header.expiresAt! > now - periodMs / 2) return [];
  const batch = new RemovalBatch();
  for (const entry of expired) if (!batch.add(entry, true)) break;
  return batch.removals;
}

/** Settings of an {@link ExpirySweeper}. */
export interface ExpirySweeperSettings {
  /** The sweep period, ms. */
  periodMs: number;
  /** The cached view of the object; undefined while there is none (nothing is swept then). */
  view: () => Snapshot | undefined;
  now: () => number;
  /** Sends the removals, planned on `snapshot`, as one test-guarded patch. */
  sweep: (snapshot: Snapshot, removals: Removal[]) => Promise<void>;
  /** Failures of a sweep (the next one tries again). */
  onError?: ((error: unknown) => void) | undefined;
  /** Random numbers in [0, 1) (default Math.random), for the jitter. */
  random?: (() => number) | undefined;
}

/** Sweeps one object's expired entries in the background; see above. */
export class ExpirySweeper {
  private readonly s: ExpirySweeperSettings;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private sweeping: Promise<void> | undefined;

  constructor(settings: ExpirySweeperSettings) {
    this.s = settings;
  }

  /** Starts looking (idempotent). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule();
  }

  /** Stops; a sweep in flight finishes on its own. */
  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** True while started. */
  get started(): boolean {
    return this.running;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (!this.running) return;
    const random = this.s.random ?? Math.random;
    const delay = (this.s.periodMs / 4) * (1 + random());
    this.timer = setTimeout(() => void this.look(), delay);
    this.timer.unref();
  }

  /** One look at the cached view; sweeps when due. Resolves once done (for tests). */
  async look(): Promise<void> {
    if (this.sweeping) return this.sweeping;
    const run = this.lookOnce();
    this.sweeping = run;
    try {
      await run;
    } finally {
      this.sweeping = undefined;
      this.schedule();
    }
  }

  private async lookOnce(): Promise<void> {
    try {
      const snapshot = this.s.view();
      if (!snapshot?.exists) return;
      const removals = planSweep(snapshot, this.s.now(), this.s.periodMs);
      if (removals.length > 0) await this.s.sweep(snapshot, removals);
    } catch (error) {
      this.s.onError?.(error);
    }
  }
}
