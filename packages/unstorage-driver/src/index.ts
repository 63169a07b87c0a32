/**
 * @k8s-kv/unstorage-driver: an unstorage driver that keeps a Nuxt or Nitro
 * app's KV data (and its route cache) in a Kubernetes ConfigMap, through
 * `@k8s-kv/core`. It only translates the unstorage driver contract: storage,
 * concurrency, TTL and errors are core's.
 *
 * @example
 * import { createStorage } from 'unstorage';
 * import k8sKvDriver from '@k8s-kv/unstorage-driver';
 * const storage = createStorage({ driver: k8sKvDriver({ bucket: 'my-app-data' }) });
 * await storage.setItem('user:42', { name: 'Ada' }, { ttl: 3600 });
 * @packageDocumentation
 */
import { defineDriver, type Driver, type StorageMeta, type TransactionOptions, type WatchCallback } from 'unstorage';
import {
  createKV,
  InvalidOptionError,
  InvalidValueError,
  loadKubeConfig,
  validateBucketName,
  type CorruptEntryError,
  type KubeApi,
  type KV,
  type KVOptions,
  type KVPutEntry,
  type RetryOptions,
} from '@k8s-kv/core';

/** A `KubeConfig` of `@kubernetes/client-node` (the type core takes). */
export type KubeConfig = NonNullable<KVOptions['kubeConfig']>;

/** Options of the driver. Nitro copies them from `nitro.config` (JSON), so keep them serializable there. */
export interface K8sKvDriverOptions {
  /**
   * Bucket name = name of the ConfigMap that holds the data: 1-63 lowercase
   * letters, digits, "-" or ".". Required.
   */
  bucket: string;
  /** App the bucket belongs to (label `k8s-kv.io/app`). Default "default". */
  app?: string;
  /**
   * Namespace of the ConfigMap. Default: the pod's own namespace in a
   * cluster, else the kubeconfig context's, else "default".
   */
  namespace?: string;
  /**
   * Default time to live of written items, in SECONDS (like unstorage's redis
   * driver). A write's own `{ ttl }` wins; `{ ttl: 0 }` writes without expiry.
   * Default: no expiry.
   */
  ttl?: number;
  /**
   * Prefix of every key inside the bucket, so that several mounts can share
   * one bucket (e.g. `base: "cache"`). Default: none.
   */
  base?: string;
  /**
   * Credentials and cluster: a kubeconfig file path (several joined with ":"
   * as in KUBECONFIG), or a `KubeConfig` of `@kubernetes/client-node`.
   * Default: KUBECONFIG, then ~/.kube/config, then the pod's service account.
   */
  kubeconfig?: string | KubeConfig;
  /** The Kubernetes API port; `createMemoryApi()` of `@k8s-kv/core/testing` for tests. Overrides `kubeconfig`. */
  api?: KubeApi;
  /** Compress values with DEFLATE when it saves space. Default true. */
  compress?: boolean;
  /** Backoff for transient API failures (network errors, 429, 5xx). */
  retry?: RetryOptions;
  /** Attempts of a compare-and-swap before giving up (core's `maxUpdateAttempts`). */
  maxUpdateAttempts?: number;
  /** Called for each corrupt entry that listings skip. */
  onCorruptEntry?: (error: CorruptEntryError) => void;
  /** Clock in milliseconds since the epoch (default `Date.now`); for tests of expiry. */
  now?: () => number;
  /**
   * Serve reads from core's list+watch cache of the bucket (default true):
   * this process's writes are visible at once, other pods' within the watch
   * latency. `false` reads from the API server on every call.
   */
  cache?: boolean;
  /** Called with errors of core's background work (the watch, which retries by itself). */
  onError?: (error: unknown) => void;
  /**
   * Spread the bucket over this many ConfigMaps (1-256, default 1) when the
   * driver creates it: up to `shards` MiB, and writes that stay fast as the
   * bucket grows; batches are then atomic per shard. An existing bucket keeps
   * its layout (core's `shards`).
   */
  shards?: number;
}

/** The name the driver reports (`driver.name`) and puts in its error messages. */
export const DRIVER_NAME = 'k8s-kv';

/**
 * An error raised by the driver: `[unstorage] [k8s-kv] message`, with core's
 * error as `cause` and its stable `code` (e.g. "KV_FORBIDDEN") copied.
 */
export class K8sKvDriverError extends Error {
  /** Core's error code (`KVError.code`), when the cause has one. */
  readonly code: string | undefined;
  constructor(message: string, options?: { cause?: unknown; code?: string | undefined }) {
    super(`[unstorage] [${DRIVER_NAME}] ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'K8sKvDriverError';
    this.code = options?.code;
  }
}

function wrapError(error: unknown): K8sKvDriverError {
  if (error instanceof K8sKvDriverError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  const wrapped = new K8sKvDriverError(message, { cause: error, code: typeof code === 'string' ? code : undefined });
  return wrapped;
}

/** Runs `fn`, turning anything it throws into a {@link K8sKvDriverError}. */
async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw wrapError(error);
  }
}

/** Validates a TTL in seconds; undefined and 0 mean "no expiry". */
function ttlSeconds(ttl: unknown, option: string): number | undefined {
  if (ttl === undefined || ttl === null) return undefined;
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 0) {
    throw wrapError(new InvalidOptionError(option, `${option} must be a finite number of seconds >= 0, got ${typeof ttl === 'string' ? JSON.stringify(ttl) : String(ttl)}.`));
  }
  return ttl;
}

/** Bytes or text of a raw value. */
function rawValue(key: string, value: unknown): Uint8Array | string {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === 'string') return value;
  const type = value === null ? 'null' : typeof value;
  throw new InvalidValueError(key, `setItemRaw(${JSON.stringify(key)}) needs a Uint8Array, Buffer, ArrayBuffer, typed array or string, got ${type}.`);
}

const textDecoder = new TextDecoder();

/**
 * The driver factory. Creating a driver reads no kubeconfig and makes no API
 * call; the core store is created on the first call. The options object is
 * never modified.
 */
const k8sKvDriver = defineDriver<K8sKvDriverOptions, KV>((opts: K8sKvDriverOptions) => {
  if (!opts || typeof opts !== 'object' || opts.bucket === undefined || opts.bucket === '') {
    throw new K8sKvDriverError('Missing required option `bucket`.', { code: 'KV_INVALID_OPTION' });
  }
  try {
    validateBucketName(opts.bucket);
  } catch (error) {
    throw wrapError(error);
  }
  const defaultTtl = ttlSeconds(opts.ttl, 'ttl');
  const base = (opts.base ?? '').replace(/^:+|:+$/g, '');
  const prefix = base ? `${base}:` : '';
  const now = opts.now ?? Date.now;

  let kv: KV | undefined;
  /** Stops of the running watches, ended by `dispose`. */
  const watches = new Set<() => Promise<void>>();
  const store = (): KV => {
    if (kv) return kv;
    // createKV treats an option given as undefined as not given.
    const { bucket, app, namespace, api, compress, retry, maxUpdateAttempts, onCorruptEntry, cache, onError, shards } = opts;
    // With an `api`, no kubeconfig is read (not even for its context's namespace).
    const kubeConfig = api !== undefined ? undefined : typeof opts.kubeconfig === 'string' ? loadKubeConfig(opts.kubeconfig) : opts.kubeconfig;
    kv = createKV({ bucket, app, namespace, api, kubeConfig, compress, retry, maxUpdateAttempts, onCorruptEntry, now: opts.now, cache, onError, shards });
    return kv;
  };

  /** Key inside the bucket. */
  const k = (key: string): string => prefix + key;
  /** TTL in milliseconds of a write: its own, else the driver's default; 0 means none. */
  const ttlMs = (topts: TransactionOptions | undefined): number | undefined => {
    const ttl = topts?.ttl === undefined ? defaultTtl : ttlSeconds(topts.ttl, 'ttl');
    return ttl ? ttl * 1000 : undefined;
  };

  const driver: Driver<K8sKvDriverOptions, KV> = {
    name: DRIVER_NAME,
    options: opts,
    // TTL is native (expiry is kept per entry). maxDepth is left to the
    // storage layer, which applies it the same way for every driver.
    flags: { ttl: true },
    getInstance: () => {
      try {
        return store();
      } catch (error) {
        throw wrapError(error);
      }
    },

    hasItem: (key) => guard(() => store().has(k(key))),

    getItem: (key) => guard(async () => (await store().getText(k(key))) ?? null),

    getItems: (items) =>
      guard(async () => {
        const values = await store().getMany(items.map((item) => k(item.key)));
        return items.map((item, i) => {
          const value = values[i];
          return { key: item.key, value: value === undefined ? null : textDecoder.decode(value) };
        });
      }),

    getItemRaw: (key) => guard(async () => (await store().get(k(key))) ?? null),

    setItem: (key, value, topts) => guard(() => store().put(k(key), value, { ttl: ttlMs(topts) })),

    setItems: (items, commonOptions) =>
      guard(async () => {
        const entries: KVPutEntry[] = items.map((item) => ({
          key: k(item.key),
          value: item.value,
          ttl: ttlMs({ ...commonOptions, ...item.options }),
        }));
        await store().putMany(entries);
      }),

    setItemRaw: (key, value, topts) => guard(() => store().put(k(key), rawValue(key, value), { ttl: ttlMs(topts) })),

    removeItem: (key) =>
      guard(async () => {
        await store().delete(k(key));
      }),

    getMeta: (key) =>
      guard(async (): Promise<StorageMeta | null> => {
        const entry = await store().getEntry(k(key));
        if (!entry) return null;
        const meta: StorageMeta = { mtime: entry.modifiedAt, size: entry.size };
        if (entry.expiresAt) {
          meta.ttl = Math.max(0, Math.ceil((entry.expiresAt.getTime() - now()) / 1000));
          meta.expires = entry.expiresAt;
        }
        return meta;
      }),

    getKeys: (keyBase) =>
      guard(async () => {
        const keys = await store().keys(k(keyBase ?? ''));
        return prefix ? keys.map((key) => key.slice(prefix.length)) : keys;
      }),

    clear: (keyBase) =>
      guard(async () => {
        await store().clear(k(keyBase ?? ''));
      }),

    watch: (callback: WatchCallback) =>
      guard(async () => {
        const unsubscribe = await store().watch((event) => {
          if (!event.key.startsWith(prefix)) return;
          callback(event.type === 'delete' ? 'remove' : 'update', event.key.slice(prefix.length));
        });
        let stopped = false;
        const stop = async (): Promise<void> => {
          if (stopped) return;
          stopped = true;
          watches.delete(stop);
          await unsubscribe();
        };
        watches.add(stop);
        return () => guard(stop);
      }),

    dispose: () =>
      guard(async () => {
        const current = kv;
        kv = undefined;
        await Promise.all([...watches].map((stop) => stop()));
        await current?.close();
      }),
  };
  return driver;
});

export default k8sKvDriver;
export { k8sKvDriver };
