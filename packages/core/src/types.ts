/**
 * The public types of @k8s-kv/core: the store's options, values, entries,
 * events, statistics and the {@link KV} interface; `listBuckets`'s options and
 * answers. The implementations are in kv.ts and buckets.ts.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { CorruptEntryError } from './errors.ts';
import type { EvictionPolicy } from './engine/eviction.ts';
import type { KubeApi, ObjectKind } from './kube/port.ts';

export type { EvictionPolicy } from './engine/eviction.ts';

/** Backoff settings for transient failures (network errors, timeouts, 429, 5xx). */
export interface RetryOptions {
  /**
   * The budget of one API call, retries included (default 30000 ms): requests
   * still running when it ends are cut, and no retry starts that could not
   * finish its wait within it. 0 turns retries off: one attempt, limited by
   * the request timeout alone.
   */
  maxElapsedMs?: number;
  /** First delay (default 100 ms); doubles up to `maxDelayMs`, with jitter. A server's `Retry-After` asks for longer. */
  initialDelayMs?: number;
  /** Longest delay between attempts (default 2000 ms), unless the server's `Retry-After` asks for more. */
  maxDelayMs?: number;
  /**
   * Called before each retry of a transient failure (the server unreachable,
   * a timeout, 429, 5xx), e.g. for a CLI to say on a terminal that it is
   * retrying and for how long. Must not throw (what it throws is ignored).
   */
  onRetry?: (event: RetryEvent) => void;
}

/** What {@link RetryOptions.onRetry} is told. */
export interface RetryEvent {
  /** Attempts made so far (1 at the first retry). */
  attempt: number;
  /** Milliseconds until the next attempt. */
  delayMs: number;
  /** Milliseconds since the call started. */
  elapsedMs: number;
  /** The call's budget (`retry.maxElapsedMs`): it gives up when this has passed. */
  budgetMs: number;
  /** Why the last attempt failed, in a few words (no values or credentials). */
  reason: string;
  /** The API server's URL, when the failure was reaching it. */
  server: string | undefined;
  /** The kube context in use, when known. */
  context: string | undefined;
  /** The failure itself, as the port threw it. */
  error: unknown;
}

/** What can be stored: bytes, or a string (kept as UTF-8 and marked as text). */
export type KVValue = Uint8Array | string;

/** Options of {@link createKV}. */
export interface KVOptions {
  /** Bucket name = ConfigMap name: 1-63 lowercase letters, digits, "-" or ".". Required. */
  bucket: string;
  /** App the bucket belongs to (label `k8s-kv.io/app`; default "default"). */
  app?: string;
  /** Namespace. Default: the pod's own namespace in a cluster, else the kubeconfig context's, else "default". */
  namespace?: string;
  /** Credentials and cluster. Default: `KubeConfig.loadFromDefault()` on first use. */
  kubeConfig?: KubeConfig;
  /** The Kubernetes API port. Default: the client-node implementation; `createMemoryApi()` for tests. */
  api?: KubeApi;
  /** TTL in milliseconds applied when `put` gives none (default: no expiry). */
  defaultTtl?: number;
  /** Compress values with DEFLATE when it saves space (default true). */
  compress?: boolean;
  /** Called for each corrupt entry that `list`, `keys`, `entries` or `getMany` skip. Default: ignore. */
  onCorruptEntry?: (error: CorruptEntryError) => void;
  /**
   * Backoff for transient API failures (network errors, timeouts, 429, 5xx);
   * `maxElapsedMs` (default 30000) is the budget of each API call, retries
   * included; `onRetry` is told of every retry.
   */
  retry?: RetryOptions;
  /**
   * Milliseconds one request to the API server may take before it is cut and
   * retried on a new connection (default 30000; also cut where the call's
   * `retry.maxElapsedMs` budget ends). Connections are checked with HTTP/2
   * PINGs every third of this (1-10 s), so a silent (half-open) one is dropped
   * within two such intervals. Ignored when `api` is given.
   */
  requestTimeoutMs?: number;
  /** Attempts of `update()` before it gives up with ConflictError (default 100). */
  maxUpdateAttempts?: number;
  /** Clock in ms since the epoch (default `Date.now`); for tests of expiry. */
  now?: () => number;
  /**
   * Serve reads from a list+watch cache of the bucket (default true): reads at
   * memory speed, your own writes visible at once, other pods' writes within the
   * watch latency. Turn off for reads that must see other pods' writes the
   * instant they are acknowledged, or when the identity may not list/watch
   * (the store then falls back to GET by itself).
   */
  cache?: boolean;
  /** Called with errors of background work (the watch, which retries by itself). Default: ignore. */
  onError?: (error: unknown) => void;
  /**
   * @experimental The kind of object that holds the bucket (default `ConfigMap`).
   * `Secret` keeps the same entries in a Secret's `data` (type `Opaque`), so that
   * only identities allowed to read secrets can read them; it needs the Role's
   * rules on `secrets` instead of `configmaps`. Values are not encrypted by
   * k8s-kv: configure encryption at rest in the cluster for that.
   */
  kind?: ObjectKind;
  /**
   * A fixed number of objects (2-256) to spread the bucket over when this store
   * creates it, instead of the default: one object that splits in two, online,
   * each time a part passes 12 KiB, so that writes stay fast as the bucket grows
   * (docs/FORMAT.md section 9). Entries are placed by a hash of the key in
   * `<bucket>.shard-<i>`, next to a head object `<bucket>` that records the count:
   * the bucket holds up to `shards` MiB and never splits. Batches (`putMany`,
   * `deleteMany`, `clear`) are atomic per object, not as a whole, in both. A
   * bucket keeps the layout it was created with: when it exists, its head decides
   * and this option is ignored (`stats().shards` tells).
   */
  shards?: number;
  /**
   * The most bytes of entries the bucket may hold (default 64 MiB, at most 1 GiB).
   * A bucket grows by splitting into more objects up to `maxBytes / 12 KiB` of them;
   * past that, each object keeps its share, and a write that would pass it evicts
   * (with `evict`) or fails with `BucketFullError`. A `maxBytes` of 1 MiB or less
   * keeps the bucket one object. Every byte lives in etcd, whose default quota
   * (2 GiB) the whole cluster shares. Does not apply to a bucket created with
   * `shards` (it holds `shards` MiB).
   */
  maxBytes?: number;
  /**
   * The most entries the bucket may hold (default: no limit); each of its objects
   * keeps its share. A write that would pass it evicts (with `evict`) or fails
   * with `BucketFullError`.
   */
  maxEntries?: number;
  /**
   * For a bucket used as a CACHE: a write over the budget (`maxBytes`,
   * `maxEntries`, or the 1 MiB a ConfigMap holds) removes entries to make room
   * instead of failing with `BucketFullError`: expired entries first, then
   * `'oldest'`: the least recently written, or `'expiring'`: the closest to their
   * expiry (entries without a TTL last). The removals travel in the write's own
   * atomic patch, each conditional on the entry still holding what was planned
   * on, so a newer value another pod wrote is never removed. Reads are not
   * tracked (there is no LRU across pods). Default: none, a full bucket fails
   * writes: leave it so for data that must not be lost.
   */
  evict?: EvictionPolicy;
  /**
   * Period of the background sweep of expired entries, in ms (default 60000;
   * 0 turns it off). While a store's read cache runs, it removes the bucket's
   * expired entries within this time of their expiry; pods take turns through
   * what the object shows, so the bucket gets at most about two sweeps per
   * period however many pods there are. A store that only writes never sweeps.
   */
  sweepInterval?: number;
}

/** A change of one key, as {@link KV.watch} reports it. */
export interface KVChangeEvent {
  /** "put" for a new or changed value, "delete" for a removed key. */
  type: 'put' | 'delete';
  /** The user key. */
  key: string;
}

/** Options of a write. */
export interface PutOptions {
  /** Time to live in milliseconds; 0 or absent means the store's `defaultTtl` (none by default). */
  ttl?: number;
}

/** A batch entry for {@link KV.putMany}. */
export interface KVPutEntry {
  key: string;
  value: KVValue;
  /** Time to live in milliseconds. */
  ttl?: number;
}

/** A stored entry with its metadata. */
export interface KVEntry {
  key: string;
  value: Uint8Array;
  /** True when the value was stored as a string. */
  text: boolean;
  /** When it was last written. */
  modifiedAt: Date;
  /** When it expires, if it does. */
  expiresAt: Date | undefined;
  /** Bytes it takes in the bucket (after compression, with its header). */
  size: number;
}

/** Bucket usage, for operators. */
export interface KVStats {
  /** Live keys. */
  keys: number;
  /** Expired entries not yet removed. */
  expired: number;
  /** Entries that cannot be decoded. */
  corrupt: number;
  /** Bytes used, as the API server counts them. */
  bytes: number;
  /** The most bytes the bucket may hold: its `maxBytes` (a bucket of one object that may not split: at most 1 MiB; a sharded bucket: 1 MiB per shard). */
  limitBytes: number;
  /** Objects holding the entries: 1, the parts of a bucket that has split, or the shard count of a sharded bucket. */
  shards: number;
  /**
   * How the bucket is kept: `single` (one object, format 1), `elastic` (parts that
   * split as they grow, format 3), `sharded` (a fixed shard count, format 2).
   */
  layout: 'single' | 'elastic' | 'sharded';
}

/**
 * Value returned by an {@link KV.update} callback: the new value; `undefined`
 * to leave the key as it is; `null` to delete it.
 */
export type UpdateResult = KVValue | null | undefined;

/** A key/value bucket in a Kubernetes ConfigMap. */
export interface KV {
  /** The bucket (ConfigMap) name. */
  readonly bucket: string;
  /** The namespace (resolved on first access). */
  readonly namespace: string;
  /** Stores a value (one atomic server-side patch of this key only). */
  put(key: string, value: KVValue, options?: PutOptions): Promise<void>;
  /** Reads a value's bytes, or undefined when missing or expired. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Reads a value as UTF-8 text, or undefined. */
  getText(key: string): Promise<string | undefined>;
  /** Reads a value with its metadata, or undefined. */
  getEntry(key: string): Promise<KVEntry | undefined>;
  /** True when the key holds a live value. */
  has(key: string): Promise<boolean>;
  /** Deletes a key; true if it held a live value. */
  delete(key: string): Promise<boolean>;
  /** Values of every live key starting with `prefix` (default: all). Corrupt entries are skipped and reported to `onCorruptEntry`. */
  list(prefix?: string): Promise<Map<string, Uint8Array>>;
  /** Live keys starting with `prefix`, sorted. */
  keys(prefix?: string): Promise<string[]>;
  /** Live entries with metadata starting with `prefix`, sorted by key. */
  entries(prefix?: string): Promise<KVEntry[]>;
  /** Values of several keys in one API call, in order (undefined where missing). */
  getMany(keys: readonly string[]): Promise<Array<Uint8Array | undefined>>;
  /** Stores several values in one atomic patch: all are written or none (in a sharded bucket: per shard). */
  putMany(entries: ReadonlyArray<KVPutEntry | readonly [string, KVValue]>, options?: PutOptions): Promise<void>;
  /** Deletes several keys in one atomic patch (in a sharded bucket: per shard); per key, whether it held a live value. */
  deleteMany(keys: readonly string[]): Promise<boolean[]>;
  /**
   * Atomic read-modify-write of one key (compare-and-swap, retried on conflict).
   * `fn` gets the current value (undefined if none) and returns the new value,
   * `undefined` to keep it, or `null` to delete it; it may run more than once.
   * Resolves to the value stored afterwards.
   */
  update(key: string, fn: (current: Uint8Array | undefined) => UpdateResult | Promise<UpdateResult>, options?: PutOptions): Promise<Uint8Array | undefined>;
  /**
   * Deletes every key starting with `prefix` (default: all keys; expired and
   * corrupt entries under the prefix too) in one atomic patch (per shard, in a
   * sharded bucket). Resolves to the
   * number of live keys deleted. The ConfigMap itself stays; see `teardown`.
   */
  clear(prefix?: string): Promise<number>;
  /**
   * Calls `listener` for every change of a key by any process or pod (this one
   * included), as the watch delivers it. Resolves once the watch is running, to
   * a function that unsubscribes. Expiry does not raise events.
   */
  watch(listener: (event: KVChangeEvent) => void): Promise<() => void>;
  /** Usage of the bucket. */
  stats(): Promise<KVStats>;
  /** Deletes the bucket's ConfigMap (and its shards: everything it holds). Refuses objects k8s-kv does not own. */
  teardown(): Promise<void>;
  /** Releases resources; later calls fail with ClosedError. */
  close(): Promise<void>;
  /** Same as {@link KV.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of {@link listBuckets}. */
export interface ListBucketsOptions {
  /** The Kubernetes API port. Default: the client-node implementation over `kubeConfig`. */
  api?: KubeApi;
  /** Credentials and cluster when `api` is not given. Default: `KubeConfig.loadFromDefault()`. */
  kubeConfig?: KubeConfig;
  /** Namespace. Default: resolved as `createKV` resolves it (pod's own, kubeconfig context's, "default"). */
  namespace?: string;
  /** List the buckets of every namespace instead (needs `list` on configmaps cluster-wide, a ClusterRole). */
  allNamespaces?: boolean;
  /** Only buckets of this app (label `k8s-kv.io/app`). Default: every app. */
  app?: string;
  /** Object kind that holds the buckets (default "ConfigMap"). */
  kind?: ObjectKind;
  /** Backoff for transient API failures. */
  retry?: RetryOptions;
  /** Clock in ms since the epoch (default `Date.now`), to tell expired entries. */
  now?: () => number;
}

/** One bucket and its usage (the same figures as {@link KV.stats}). */
export interface BucketInfo extends KVStats {
  /** Bucket (object) name. */
  name: string;
  /** Namespace it lives in. */
  namespace: string;
  /** App it belongs to (label `k8s-kv.io/app`). */
  app: string | undefined;
  /** When the bucket's object was created. */
  createdAt: Date | undefined;
  /**
   * Set when the bucket declares a storage format this version cannot read
   * (annotation `k8s-kv.io/format`, or a format-2 layout it does not know): the
   * format as declared. Its figures then count what this version could decode.
   */
  unsupportedFormat?: string;
}
