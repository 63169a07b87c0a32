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
import {
  defineDriver,
  normalizeBaseKey,
  normalizeKey,
  type Driver,
  type Storage,
  type StorageMeta,
  type TransactionOptions,
  type WatchCallback,
} from 'unstorage';
import {
  createKV,
  InvalidOptionError,
  InvalidValueError,
  loadKubeConfig,
  validateBucketName,
  withMessagePrefix,
  type KV,
  type KVOptions,
  type KVPutEntry,
} from '@k8s-kv/core';

/** A `KubeConfig` of `@kubernetes/client-node` (the type core takes). */
export type KubeConfig = NonNullable<KVOptions['kubeConfig']>;

/** The options of core's `createKV` that the driver takes as they are and passes through unchanged. */
export type K8sKvCoreOptions = Pick<
  KVOptions,
  | 'bucket'
  | 'app'
  | 'namespace'
  | 'api'
  | 'compress'
  | 'retry'
  | 'requestTimeoutMs'
  | 'maxUpdateAttempts'
  | 'onCorruptEntry'
  | 'now'
  | 'cache'
  | 'onError'
  | 'shards'
  | 'maxBytes'
  | 'maxEntries'
  | 'evict'
  | 'sweepInterval'
>;

/**
 * Options of the driver: core's (see `@k8s-kv/core`'s `KVOptions`), plus the
 * driver's own `ttl`, `base` and `kubeconfig`. Nitro copies them from
 * `nitro.config` (JSON), so keep them serializable there.
 */
export interface K8sKvDriverOptions extends K8sKvCoreOptions {
  /**
   * Default time to live of written items, in SECONDS (like unstorage's redis
   * driver). A write's own `{ ttl }` wins; `{ ttl: 0 }` writes without expiry.
   * Default: no expiry.
   */
  ttl?: number;
  /**
   * Prefix of every key inside the bucket, so that several mounts can share
   * one bucket (e.g. `base: "cache"`), normalized as unstorage normalizes a
   * mount's base. Default: none.
   */
  base?: string;
  /**
   * Credentials and cluster: a kubeconfig file path (several joined with ":"
   * as in KUBECONFIG), or a `KubeConfig` of `@kubernetes/client-node`.
   * Default: KUBECONFIG, then ~/.kube/config, then the pod's service account.
   */
  kubeconfig?: string | KubeConfig;
}

/**
 * The driver: unstorage's driver contract, plus the atomic read-modify-write
 * that unstorage has no method for. Reach it from a storage with
 * {@link k8sKvDriverOf}. Keys are relative to the mount, as in `storage.getItem`.
 */
export interface K8sKvDriver extends Driver<K8sKvDriverOptions, KV> {
  /**
   * Atomic read-modify-write of one key, across every process and pod:
   * `fn` gets the stored text (what the driver's `getItem` returns; `null`
   * when missing) and returns the new text, `undefined` to keep it, or `null`
   * to delete the key. `fn` may run more than once (a concurrent write made it
   * start over) and must not have side effects. Resolves to the text stored
   * afterwards (`null` when none). `opts.ttl` in seconds, as for `setItem`.
   */
  update(key: string, fn: (current: string | null) => string | null | undefined, opts?: TransactionOptions): Promise<string | null>;
  /**
   * Adds `by` (default 1) to the number stored at `key` (0 when missing)
   * atomically, across every process and pod; resolves to the new number.
   * `storage.getItem(key)` reads it back as a number. Rejects with
   * `InvalidValueError` when the key holds something that is not a number.
   */
  increment(key: string, by?: number, opts?: TransactionOptions): Promise<number>;
}

/** The name the driver reports (`driver.name`) and puts in its error messages. */
export const DRIVER_NAME = 'k8s-kv';

/**
 * Core's error as the driver reports it: the same class (so `instanceof
 * ForbiddenError` and `error.code` work) and fields, its message prefixed in
 * unstorage's style, `[unstorage] [k8s-kv] bucket "NAME": ...`, and the
 * original as `cause`. Other errors pass through unchanged.
 */
function driverError(error: unknown, bucket?: string): unknown {
  return withMessagePrefix(error, `[unstorage] [${DRIVER_NAME}] ${bucket === undefined ? '' : `bucket ${JSON.stringify(bucket)}: `}`);
}

/** Validates a TTL in seconds; undefined and 0 mean "no expiry". */
function ttlSeconds(ttl: unknown, option: string): number | undefined {
  if (ttl === undefined || ttl === null) return undefined;
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 0) {
    throw new InvalidOptionError(
      option,
      `${option} must be a finite number of seconds >= 0, got ${typeof ttl === 'string' ? JSON.stringify(ttl) : String(ttl)}.`,
    );
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
const k8sKvDriver = defineDriver<K8sKvDriverOptions, KV>((opts: K8sKvDriverOptions): K8sKvDriver => {
  if (!opts || typeof opts !== 'object' || opts.bucket === undefined || opts.bucket === '') {
    throw driverError(new InvalidOptionError('bucket', 'Missing required option `bucket`.'));
  }
  let defaultTtl: number | undefined;
  try {
    validateBucketName(opts.bucket);
    defaultTtl = ttlSeconds(opts.ttl, 'ttl');
  } catch (error) {
    throw driverError(error);
  }
  const { bucket } = opts;
  const prefix = normalizeBaseKey(opts.base);
  const now = opts.now ?? Date.now;

  let kv: KV | undefined;
  /** Stops of the running watches, ended by `dispose`. */
  const watches = new Set<() => Promise<void>>();
  const store = (): KV => {
    if (kv) return kv;
    // Core's options pass through as they are (createKV treats undefined as not given).
    const { ttl: _ttl, base: _base, kubeconfig, ...core } = opts;
    // With an `api`, no kubeconfig is read (not even for its context's namespace).
    const kubeConfig = core.api !== undefined ? undefined : typeof kubeconfig === 'string' ? loadKubeConfig(kubeconfig) : kubeconfig;
    kv = createKV({ ...core, kubeConfig });
    return kv;
  };
  /** Runs `fn`, reporting core's errors as the driver's (see driverError). */
  const guard = async <T>(fn: () => T | Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (error) {
      throw driverError(error, bucket);
    }
  };

  /** Key inside the bucket. */
  const k = (key: string): string => prefix + key;
  /** TTL in milliseconds of a write: its own, else the driver's default; 0 means none. */
  const ttlMs = (topts: TransactionOptions | undefined): number | undefined => {
    const ttl = topts?.ttl === undefined ? defaultTtl : ttlSeconds(topts.ttl, 'ttl');
    return ttl ? ttl * 1000 : undefined;
  };

  const update: K8sKvDriver['update'] = (key, fn, topts) =>
    guard(async () => {
      const ttl = ttlMs(topts);
      const stored = await store().update(
        k(normalizeKey(key)),
        (current) => fn(current === undefined ? null : textDecoder.decode(current)),
        ttl === undefined ? undefined : { ttl },
      );
      return stored === undefined ? null : textDecoder.decode(stored);
    });

  const driver: K8sKvDriver = {
    name: DRIVER_NAME,
    options: opts,
    // TTL is native (expiry is kept per entry). maxDepth is left to the
    // storage layer, which applies it the same way for every driver.
    flags: { ttl: true },
    getInstance: () => {
      try {
        return store();
      } catch (error) {
        throw driverError(error, bucket);
      }
    },

    update,

    increment: async (key, by = 1, topts) => {
      if (typeof by !== 'number' || !Number.isFinite(by)) {
        throw driverError(new InvalidValueError(key, `increment(${JSON.stringify(key)}, by) needs a finite number, got ${String(by)}.`), bucket);
      }
      const stored = await update(
        key,
        (current) => {
          const value = current === null ? 0 : Number(current);
          if (current !== null && (current.trim() === '' || !Number.isFinite(value))) {
            throw new InvalidValueError(
              key,
              `Key ${JSON.stringify(key)} holds ${JSON.stringify(current.slice(0, 40))}, not a number: increment() cannot add to it.`,
            );
          }
          return String(value + by);
        },
        topts,
      );
      return Number(stored);
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
}) as (opts: K8sKvDriverOptions) => K8sKvDriver;

/**
 * The k8s-kv driver mounted at `mountpoint` of `storage` (e.g. Nitro's
 * `useStorage()` and "data"), for its {@link K8sKvDriver.update} and
 * {@link K8sKvDriver.increment}, which unstorage's storage has no method for.
 * Throws `InvalidOptionError` when no k8s-kv driver is mounted exactly there.
 *
 * @example
 * const visits = await k8sKvDriverOf(useStorage(), 'data').increment('visits');
 */
export function k8sKvDriverOf(storage: Pick<Storage, 'getMount'>, mountpoint: string): K8sKvDriver {
  const { base, driver } = storage.getMount(mountpoint);
  if (driver.name !== DRIVER_NAME || base !== normalizeBaseKey(mountpoint) || typeof (driver as Partial<K8sKvDriver>).update !== 'function') {
    throw driverError(
      new InvalidOptionError(
        'mountpoint',
        `No ${DRIVER_NAME} driver is mounted at ${JSON.stringify(mountpoint)}: the mount there is driver ${JSON.stringify(driver.name ?? 'unknown')} at ${JSON.stringify(base)}. ` +
          'Mount @k8s-kv/unstorage-driver there (e.g. storage: { data: { driver: "@k8s-kv/unstorage-driver", bucket } } in nitro.config).',
      ),
    );
  }
  return driver as K8sKvDriver;
}

export default k8sKvDriver;
export { k8sKvDriver };
