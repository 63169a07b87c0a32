/**
 * Contention backoff for the writes of one object.
 *
 * The API server applies concurrent patches of one object optimistically: each
 * attempt re-applies its patch to the whole object and goes through etcd; the
 * losers of a race are applied again (measured on the local API server: 1.00
 * attempts per patch with one writing process, 2.7-3.1 with four writing one
 * ConfigMap). Nothing in the answer says so, but the time does: a write that
 * took far longer than this object's usual time means other writers were at it.
 * The next write then waits a random part of that excess, so writers drift into
 * taking turns and each patch carries the writes that queued meanwhile. A writer
 * alone keeps its usual time and never waits.
 */

/** A write slower than this many times the usual time is taken as contention. */
export const SLOW_FACTOR = 2;
/** The usual time (lowest recent write) creeps up by this factor per write, so it follows a growing object. */
const USUAL_DRIFT = 1.02;
/** The longest wait before a write, whatever the excess (a stalled server is not contention). */
export const MAX_PACING_MS = 100;

/** Times one object's writes and says how long the next one should wait. */
export class WritePacer {
  private usualMs = Infinity;
  private lastMs = 0;

  /** Records how long a successful write took. */
  record(ms: number): void {
    this.lastMs = ms;
    this.usualMs = Math.min(this.usualMs * USUAL_DRIFT, ms);
  }

  /**
   * Milliseconds to wait before the next write: 0 after a write of usual time,
   * else `random` (0 to 1) times the excess over the usual time, at most
   * {@link MAX_PACING_MS}.
   */
  delayMs(random: number = Math.random()): number {
    if (!(this.lastMs > SLOW_FACTOR * this.usualMs)) return 0;
    return Math.min(MAX_PACING_MS, random * (this.lastMs - this.usualMs));
  }
}
