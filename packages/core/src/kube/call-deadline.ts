/**
 * The deadline of the call in progress, carried through its async context so
 * that the port can cut a request at the call's budget without every port
 * method taking a signal: `withRetry` sets it, `createClientNodeApi` reads it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const deadlines = new AsyncLocalStorage<number>();

/** Runs `fn` with `deadline` (ms since the epoch) as the deadline of every port request it makes. */
export function runWithDeadline<T>(deadline: number, fn: () => Promise<T>): Promise<T> {
  return deadlines.run(deadline, fn);
}

/** The deadline of the call in progress (ms since the epoch), if it has one. */
export function currentDeadline(): number | undefined {
  return deadlines.getStore();
}
