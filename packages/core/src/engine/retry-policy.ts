/**
 * Every retry k8s-kv makes, and its limit. Two kinds of failure are retried:
 *
 * - **transient** failures of one API call (network errors, timeouts, 429, 5xx;
 *   see `isTransient` in api-errors.ts): the same call again, after a jittered
 *   exponential backoff, within a time budget ({@link withRetry}, {@link RetryOptions});
 * - **lost races**: a write planned on a state that changed before it landed
 *   (a failed JSON-patch `test`, a 409, an object deleted or replaced meanwhile).
 *   The write is planned again on a fresh read, a bounded number of times:
 *   {@link MAX_REPLANS} for puts and deletes, `maxUpdateAttempts`
 *   ({@link DEFAULT_MAX_UPDATE_ATTEMPTS}) for `update`'s compare-and-swap, whose
 *   attempts back off by {@link conflictBackoff}; {@link MAX_ROUTES} when a
 *   bucket's layout changed under an operation.
 *
 * Each planned write's API call goes through {@link withRetry} on its own, so a
 * replan never repeats a transient failure's budget.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { KVError } from '../errors.ts';
import type { RetryOptions } from '../types.ts';
import { KubeApiError } from '../kube/port.ts';
import { isTransient, toKVError, type CallContext } from './api-errors.ts';

/** Defaults of {@link RetryOptions}. */
export const DEFAULT_RETRY = { maxElapsedMs: 30_000, initialDelayMs: 100, maxDelayMs: 2_000 } as const;

/** Plans of one put or delete (a write whose `test`s failed, or whose object was replaced) before `ConflictError`. */
export const MAX_REPLANS = 8;

/** Attempts of `update`'s compare-and-swap before `ConflictError` (option `maxUpdateAttempts`). */
export const DEFAULT_MAX_UPDATE_ATTEMPTS = 100;

/**
 * Routings of one operation whose bucket changed layout under it (created, torn
 * down, laid out anew, an object split while the operation was on its way).
 */
export const MAX_ROUTES = 8;

/** The longest pause between two compare-and-swap attempts of one `update`. */
const MAX_CONFLICT_BACKOFF_MS = 100;

/** Runs `call`, retrying transient failures with jittered exponential backoff. Non-transient failures are thrown unchanged. */
export async function withRetry<T>(call: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const maxElapsed = options.maxElapsedMs ?? DEFAULT_RETRY.maxElapsedMs;
  const maxDelay = options.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs;
  let delay = options.initialDelayMs ?? DEFAULT_RETRY.initialDelayMs;
  const started = Date.now();
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (!isTransient(error) || Date.now() - started + delay > maxElapsed) throw error;
      await sleep(delay / 2 + Math.random() * (delay / 2));
      delay = Math.min(delay * 2, maxDelay);
    }
  }
}

/**
 * Runs one port call with {@link withRetry}. Resolves to the answer, or to the
 * server's refusal when `expected` accepts it (the caller handles it: a missing
 * object, a failed test); any other failure is thrown as a typed {@link KVError}.
 */
export async function callApi<T>(ctx: CallContext, retry: RetryOptions | undefined, fn: () => Promise<T>): Promise<T>;
export async function callApi<T>(
  ctx: CallContext,
  retry: RetryOptions | undefined,
  fn: () => Promise<T>,
  expected: (refusal: KubeApiError) => boolean,
): Promise<T | KubeApiError>;
export async function callApi<T>(
  ctx: CallContext,
  retry: RetryOptions | undefined,
  fn: () => Promise<T>,
  expected?: (refusal: KubeApiError) => boolean,
): Promise<T | KubeApiError> {
  try {
    return await withRetry(fn, retry);
  } catch (error) {
    if (expected && error instanceof KubeApiError && expected(error)) return error;
    throw toKVError(error, ctx);
  }
}

/** Pause before compare-and-swap attempt `attempt` (1, 2, ...) after lost races: random, growing, at most 100 ms. */
export function conflictBackoff(attempt: number): Promise<void> {
  const ceiling = Math.min(4 * 2 ** Math.min(attempt, 5), MAX_CONFLICT_BACKOFF_MS);
  return sleep(Math.random() * ceiling);
}
