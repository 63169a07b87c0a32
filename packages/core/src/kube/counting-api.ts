/**
 * Wraps any {@link KubeApi} and counts the calls made through it: for tests
 * that check how many API round trips an operation costs.
 */
import type { KubeApi } from './port.ts';

/** The port methods, in the order counted. */
const METHODS = ['get', 'list', 'create', 'mergePatch', 'strategicMergePatch', 'jsonPatch', 'delete', 'watch'] as const;

/** A counting wrapper around a port. */
export interface CountingApi {
  /** The wrapped port: pass it as `api` to `createKV`. */
  api: KubeApi;
  /** Calls per port method (absent: none yet). */
  counts: Partial<Record<(typeof METHODS)[number], number>>;
  /** Forgets the counts. */
  reset(): void;
}

/** Counts the calls made through `api` (the real or the in-memory port). */
export function countingApi(api: KubeApi): CountingApi {
  const counts: CountingApi['counts'] = {};
  const wrapped = Object.fromEntries(
    METHODS.map((method) => [
      method,
      (...args: unknown[]) => {
        counts[method] = (counts[method] ?? 0) + 1;
        return (api[method] as (...a: unknown[]) => unknown)(...args);
      },
    ]),
  ) as unknown as KubeApi;
  return {
    api: wrapped,
    counts,
    reset() {
      for (const method of METHODS) delete counts[method];
    },
  };
}
