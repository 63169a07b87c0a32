// Small helpers every test suite shares (packages' unit tests and the
// integration tests alike): fresh bucket names, a clock moved by hand, waiting
// for what another process or a watch delivers, and concurrent callers.
import { randomBytes } from 'node:crypto';
import { vi } from 'vitest';

let serial = 0;
/** A fresh bucket name: `prefix`, this process, a counter and random hex (unique across parallel test files). */
export function bucketName(prefix = 'b'): string {
  serial += 1;
  return `${prefix}-${process.pid}-${serial}-${randomBytes(3).toString('hex')}`;
}

/** A clock the expiry tests move by hand: pass `now` as a store's clock. */
export function manualClock(start = Date.now()): { now: () => number; advance: (ms: number) => void } {
  let now = start;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

/** Retries `assertion` until it passes (reads may come from a watch cache that has not caught up yet), for at most `timeoutMs`. */
export function eventually<T>(assertion: () => T | Promise<T>, timeoutMs = 15_000): Promise<T> {
  return vi.waitFor(assertion, { timeout: timeoutMs, interval: 25 });
}

/** Calls `op(i)` for i from 0 to `count - 1` with `callers` concurrent callers, each waiting for its call before taking the next i. */
export async function withCallers(count: number, callers: number, op: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next < count) await op(next++);
    }),
  );
}
