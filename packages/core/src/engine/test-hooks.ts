/**
 * Hooks for tests only (exported from `@k8s-kv/core/testing`), passed in a store's
 * options under a symbol so that they are not part of the public option types.
 */

/**
 * Option key of a split hook: `createKV({ ..., [SPLIT_HOOK]: (step, object) => ... })`.
 * The hook is called before each step of every split the store runs (split.ts
 * `SPLIT_STEPS`); what it throws stops the split there, as a crash would, and a
 * process may exit in it to crash for real.
 */
export const SPLIT_HOOK: unique symbol = Symbol.for('k8s-kv.splitHook');
