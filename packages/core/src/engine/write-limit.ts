/**
 * How many writes (puts and deletes) a store keeps on the wire at once, across the
 * objects of its bucket: a limit that follows the API server's queue, in the manner of
 * TCP Vegas (and of Netflix's concurrency-limits).
 *
 * The API server applies a patch to the copy of the object in its watch cache and
 * applies it again when etcd refuses that copy as stale: two patches of one object that
 * overlap at the server cost three attempts or more. How long a patch stays at the server
 * is mostly how long it queues there, and a process with many callers fills that queue:
 * measured on the local API server, 4 processes x 16 callers writing one bucket of 116
 * parts made 1.26 attempts per patch; with at most 4 writes on the wire per process, 1.06,
 * at the same throughput and with 15% less of the server's CPU (docs/PERFORMANCE.md).
 *
 * Each answered write is timed. The lowest time seen (`noLoadMs`, creeping up slowly so
 * that it follows a larger object or a slower cluster) is what a write costs with no
 * queue; `limit * (1 - noLoadMs / ms)` estimates how many of this store's writes were
 * queued at the server. A queue of fewer than ALPHA writes lets the limit grow (the server
 * has room, or the time is the network's: a distant API server keeps `ms` close to
 * `noLoadMs` at any limit), more than BETA makes it shrink, in steps of about log10(limit).
 * The limit only grows while it is used, so an idle store does not open the gates wide.
 */

/**
 * The limit never goes below this many writes (4 processes with 4 each made 1.06 attempts
 * per patch in the measurement above; a limit this low also cannot tell a queue of BETA).
 */
export const MIN_WRITES = 4;
/** ... nor above this many. */
export const MAX_WRITES = 256;
/**
 * The limit a store starts with: low, so that its first writes show what a write costs
 * with no queue of its own (a store that started with many on the wire would take their
 * queued time for the no-queue time); it grows quickly while there is room.
 */
export const INITIAL_WRITES = MIN_WRITES;
/** Queued writes (of this store, at the server) below which the limit grows... */
const ALPHA = 2;
/** ... and above which it shrinks. */
const BETA = 4;
/**
 * The no-queue time creeps up by this factor per answered write (doubles in ~3,500 writes
 * with no quicker answer), so that it follows a larger object or a slower cluster. A store
 * whose writes always queue may so drift back to a loose limit: what it did without one.
 */
const NO_LOAD_DRIFT = 1.0002;

/** A write waiting for its turn. */
interface Waiter {
  deadline: number;
  /** Arrival order, for writes of the same deadline. */
  order: number;
  go: (answered: Answered) => void;
}

/** What a write calls when it is answered: with how long it took (ms), or `undefined` when it failed or was not sent. */
export type Answered = (ms: number | undefined) => void;

/**
 * Counts a store's writes on the wire and makes the next one wait while the limit is
 * reached. Waiting writes go earliest deadline first (the call budget each carries,
 * kube/call-deadline.ts): a write that has waited longest, such as one routed again
 * after a split held it, goes before a put that has just begun.
 */
export class WriteLimit {
  private current = INITIAL_WRITES;
  private inFlight = 0;
  private noLoadMs = Infinity;
  private readonly waiting: Waiter[] = [];
  private arrivals = 0;

  /** The current limit (for tests and diagnostics). */
  get limit(): number {
    return Math.floor(this.current);
  }

  /** Writes on the wire now. */
  get active(): number {
    return this.inFlight;
  }

  /**
   * Resolves once this write may go (at once while under the limit and no write waits)
   * to the function to call when it is answered. `deadline`: when the write's call must
   * be over (epoch ms; none: after every write that has one).
   */
  acquire(deadline = Infinity): Promise<Answered> {
    if (this.inFlight < this.limit && this.waiting.length === 0) return Promise.resolve(this.take());
    return new Promise((go) => {
      this.waiting.push({ deadline, order: this.arrivals++, go });
    });
  }

  /** A turn on the wire, and the function that ends it. */
  private take(): Answered {
    this.inFlight++;
    const used = this.inFlight;
    let ended = false;
    return (ms) => {
      if (ended) return;
      ended = true;
      this.inFlight--;
      if (ms !== undefined) this.record(ms, used);
      while (this.inFlight < this.limit && this.waiting.length > 0) this.next().go(this.take());
    };
  }

  /** Removes and returns the waiting write with the earliest deadline (of those, the first to come). */
  private next(): Waiter {
    let best = 0;
    for (let i = 1; i < this.waiting.length; i++) {
      const [a, b] = [this.waiting[i]!, this.waiting[best]!];
      if (a.deadline < b.deadline || (a.deadline === b.deadline && a.order < b.order)) best = i;
    }
    return this.waiting.splice(best, 1)[0]!;
  }

  /** Adjusts the limit to a write answered in `ms`, sent when `used` writes were on the wire (itself included). */
  record(ms: number, used: number): void {
    this.noLoadMs = Math.min(this.noLoadMs * NO_LOAD_DRIFT, ms);
    const queued = this.current * (1 - this.noLoadMs / Math.max(ms, this.noLoadMs));
    const step = Math.max(1, Math.log10(this.current));
    if (queued < ALPHA) {
      // Room at the server: grow, but only a limit that is used (an idle store keeps its limit).
      if (used * 2 >= this.current) this.current = Math.min(MAX_WRITES, this.current + step);
    } else if (queued > BETA) this.current = Math.max(MIN_WRITES, this.current - step);
  }
}
