/**
 * The deadline of the call in progress, carried through its async context so
 * that the port can cut a request where the call's budget ends without every
 * port method taking a signal. A KV call sets it from `retry.maxElapsedMs`
 * (kv.ts), `withRetry` keeps it or sets its own, `createClientNodeApi` reads it.
 * Background work (the watch loop) runs outside any call's deadline.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const deadlines = new AsyncLocalStorage<number>();

/** Runs `fn` with `deadline` (ms since the epoch) as the deadline of every port request it makes. */
export function runWithDeadline<T>(deadline: number, fn: () => Promise<T>): Promise<T> {
  return deadlines.run(deadline, fn);
}

/** Runs `fn` under `deadline`, or outside any deadline when it is undefined. */
export function runUnder<T>(deadline: number | undefined, fn: () => Promise<T>): Promise<T> {
  return deadline === undefined ? deadlines.exit(fn) : deadlines.run(deadline, fn);
}

/**
 * Runs `fn` with a budget of `budgetMs` from now (none for 0), or within the
 * deadline already in force if that ends sooner.
 */
export function runWithBudget<T>(budgetMs: number, fn: () => Promise<T>): Promise<T> {
  const outer = deadlines.getStore();
  if (budgetMs <= 0) return fn();
  const own = Date.now() + budgetMs;
  return deadlines.run(outer === undefined ? own : Math.min(outer, own), fn);
}

/** The deadline of the call in progress (ms since the epoch), if it has one. */
export function currentDeadline(): number | undefined {
  return deadlines.getStore();
}

/**
 * Waits for `work` (which runs on its own, e.g. the watch cache's first list)
 * no longer than the deadline in force: past it, rejects with a TimeoutError.
 */
export function untilDeadline<T>(work: Promise<T>, what: string): Promise<T> {
  const deadline = deadlines.getStore();
  if (deadline === undefined) return work;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new DOMException(`the call's budget (retry.maxElapsedMs) ran out while ${what}`, 'TimeoutError')),
      Math.max(0, deadline - Date.now()),
    );
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
