/**
 * KeyvK8sKv: a Keyv storage adapter over a k8s-kv bucket (one ConfigMap).
 *
 * One class serves Keyv 5 and Keyv 6, which call adapters differently (Keyv 5
 * prefixes keys itself and passes a relative ttl; Keyv 6 leaves key prefixing
 * to the adapter and passes an absolute `expires`). Which of the two contracts
 * an adapter follows is fixed when it is built: the `contract` option, by
 * default the contract of the `keyv` package installed next to this one.
 * Nothing Keyv reads (`capabilities`, `opts`) changes it.
 *
 * Both contracts store the same thing under the same key: Keyv's serialized
 * value, unchanged, under `namespace:key` (or `key` without a namespace).
 */
import { Hookified } from 'hookified';
import { Keyv } from 'keyv';
import { createKV, InvalidOptionError, InvalidValueError, withMessagePrefix, type KV, type KVOptions, type KVPutEntry } from '@k8s-kv/core';

/** Which Keyv major's calling convention the adapter follows. */
export type KeyvContract = 'keyv5' | 'keyv6';

/** The options of core's `createKV` that the adapter takes as they are and passes through unchanged. */
export type KeyvK8sKvCoreOptions = Partial<Pick<KVOptions, 'bucket'>> &
  Pick<
    KVOptions,
    'app' | 'kubeConfig' | 'api' | 'compress' | 'cache' | 'retry' | 'requestTimeoutMs' | 'shards' | 'maxBytes' | 'maxEntries' | 'evict' | 'sweepInterval'
  >;

/**
 * Options of {@link KeyvK8sKv}: core's (see `@k8s-kv/core`'s `KVOptions`;
 * `bucket` is required unless `kv` is given), plus the adapter's own.
 */
export interface KeyvK8sKvOptions extends KeyvK8sKvCoreOptions {
  /**
   * Kubernetes namespace of the ConfigMap (core's `namespace`). Default: the
   * pod's own namespace in a cluster, else the kubeconfig context's, else
   * "default". (Named so because Keyv owns the word `namespace`: its key prefix.)
   */
  kubeNamespace?: string;
  /**
   * Use this k8s-kv store instead of creating one (e.g. to share one bucket and
   * one watch between several Keyv namespaces). It stays yours: `disconnect()`
   * does not close it. Excludes core's options.
   */
  kv?: KV;
  /** Keyv namespace (key prefix) to start with. Keyv sets it when it has one of its own. */
  namespace?: string;
  /**
   * The Keyv major whose calling convention to follow: "keyv6" for a Keyv 6
   * instance, "keyv5" for Keyv 5 (which cache-manager 7 and cacheable 2 use).
   * Default: the major of the `keyv` package this package resolves (its peer
   * dependency, i.e. the one your app installed). Pass it when an app has both.
   */
  contract?: KeyvContract;
}

/** What `adapter.opts` holds: the options without objects (store, port, credentials), plus what Keyv 5 reads. */
export type KeyvK8sKvOpts = Omit<KeyvK8sKvOptions, 'kv' | 'api' | 'kubeConfig'> & {
  /** The bucket (of `kv` when one was given). */
  bucket: string;
  /** The contract in use. */
  contract: KeyvContract;
  /** Adapter name, for Keyv 5 (which reads `opts.dialect`). */
  dialect: 'k8s-kv';
  /**
   * Always the string "k8s-kv:". Keyv 5's constructor calls `opts.url.includes(...)`
   * on adapters that have an `iterator`, and throws when `url` is not a string.
   */
  url: string;
};

/** A `set`/`setMany` entry as Keyv 5 (`ttl`, relative ms) or Keyv 6 (`expires`, absolute ms) passes it. */
export interface KeyvK8sKvEntry {
  key: string;
  value: unknown;
  ttl?: number;
  expires?: number;
}

/** The contract of the `keyv` package this package resolves: Keyv 6's class has `resolveStore`, Keyv 5's does not. */
const INSTALLED_CONTRACT: KeyvContract = typeof (Keyv.prototype as { resolveStore?: unknown }).resolveStore === 'function' ? 'keyv6' : 'keyv5';

/** An absolute expiry (ms since the epoch) below this is a relative ttl that Keyv 5 passed: 1973-03-03. */
const EARLIEST_EXPIRES_MS = 1e11;

/** The methods Keyv 6's capability check looks for. */
const STORAGE_METHODS = ['get', 'getMany', 'has', 'hasMany', 'set', 'setMany', 'delete', 'deleteMany', 'clear', 'disconnect', 'iterator'] as const;

/** Keyv 6's capability descriptor of this adapter (`expires: true` only under the Keyv 6 contract). */
export interface KeyvK8sKvCapabilities {
  compatible: true;
  store: 'keyvStorage';
  methods: Record<(typeof STORAGE_METHODS)[number], { exists: true; methodType: 'async' }>;
  expires: boolean;
}

const textDecoder = new TextDecoder();

/** Core's error with the bucket named in its message, `bucket "NAME": ...` (same class and fields; the original as cause). */
function namedError(error: unknown, bucket: string): unknown {
  return withMessagePrefix(error, `bucket ${JSON.stringify(bucket)}: `);
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return 'a Uint8Array';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/**
 * Keyv storage adapter keeping entries in a Kubernetes ConfigMap through
 * `@k8s-kv/core`. Lazy: no API call and no kubeconfig read until first use.
 * Events (`error`) through `Hookified`, as Keyv's own adapters.
 *
 * @example
 * import Keyv from 'keyv';
 * import { KeyvK8sKv } from '@k8s-kv/keyv-adapter';
 * const keyv = new Keyv({ store: new KeyvK8sKv({ bucket: 'my-cache' }) });
 */
export class KeyvK8sKv extends Hookified {
  /** Options, as official Keyv adapters expose them. */
  readonly opts: KeyvK8sKvOpts;
  /** Keyv namespace (key prefix). Keyv sets it; undefined or "" means none. */
  namespace: string | undefined;
  readonly #kv: KV;
  readonly #ownsKv: boolean;
  readonly #contract: KeyvContract;
  #disconnected = false;

  constructor(options: KeyvK8sKvOptions | string) {
    // Emitting "error" with no listener must not throw: background errors are reported, never a crash.
    super({ throwOnEmptyListeners: false });
    if (typeof options !== 'string' && (!options || typeof options !== 'object')) {
      throw new InvalidOptionError('options', 'KeyvK8sKv needs options with at least { bucket }, or a bucket name.');
    }
    const {
      kv,
      namespace,
      kubeNamespace,
      contract = INSTALLED_CONTRACT,
      ...core
    }: KeyvK8sKvOptions = typeof options === 'string' ? { bucket: options } : options;
    if (contract !== 'keyv5' && contract !== 'keyv6') {
      throw new InvalidOptionError('contract', `KeyvK8sKv: contract must be "keyv5" or "keyv6", got ${JSON.stringify(contract)}.`);
    }
    if (kv) {
      const extra = [
        ...Object.keys(core).filter((name) => core[name as keyof typeof core] !== undefined),
        ...(kubeNamespace === undefined ? [] : ['kubeNamespace']),
      ];
      if (extra.length > 0) {
        throw new InvalidOptionError(extra[0]!, `KeyvK8sKv: pass either "kv" or the options that create one (${extra.join(', ')}), not both.`);
      }
      this.#kv = kv;
      this.#ownsKv = false;
    } else {
      const { bucket } = core;
      if (bucket === undefined) throw new InvalidOptionError('bucket', 'KeyvK8sKv needs a "bucket" (the ConfigMap name), or an existing store as "kv".');
      // Core's options pass through as they are (createKV treats undefined as not given).
      this.#kv = createKV({ ...core, bucket, namespace: kubeNamespace, onError: (error) => this.#reportBackgroundError(error) });
      this.#ownsKv = true;
    }
    this.#contract = contract;
    this.namespace = namespace;
    const { api: _api, kubeConfig: _kubeConfig, ...plain } = core;
    this.opts = { ...plain, kubeNamespace, namespace, bucket: this.#kv.bucket, contract, dialect: 'k8s-kv', url: 'k8s-kv:' };
  }

  /** The k8s-kv store underneath (for `stats()`, `teardown()`, ...). */
  get kv(): KV {
    return this.#kv;
  }

  /** The calling convention this adapter follows (the `contract` option, fixed at construction). */
  get contract(): KeyvContract {
    return this.#contract;
  }

  /**
   * Keyv 6's capability descriptor. Under the Keyv 6 contract `expires` is
   * true, and Keyv 6 uses the adapter directly. Under the Keyv 5 contract it
   * is false, and Keyv 6 would wrap the adapter in its bridge for Keyv 5
   * adapters instead. Reading it changes nothing.
   */
  get capabilities(): KeyvK8sKvCapabilities {
    const methods = {} as KeyvK8sKvCapabilities['methods'];
    for (const name of STORAGE_METHODS) methods[name] = { exists: true, methodType: 'async' };
    return { compatible: true, store: 'keyvStorage', methods, expires: this.#contract === 'keyv6' };
  }

  /**
   * Reads a value (Keyv's serialized string), or undefined when missing or
   * expired. (`Value` is there for Keyv's adapter types; the value is the string stored.)
   */
  async get<Value = string>(key: string): Promise<Value | undefined> {
    return this.#call(async () => (await this.#kv.getText(this.#storageKey(key))) as Value | undefined);
  }

  /** Reads several values in one API call, in order (undefined where missing or expired). */
  async getMany<Value = string>(keys: string[]): Promise<Array<Value | undefined>> {
    const values = await this.#call(() => this.#kv.getMany(keys.map((key) => this.#storageKey(key))));
    return values.map((value) => (value === undefined ? undefined : (textDecoder.decode(value) as Value)));
  }

  /**
   * Stores a value. Keyv 5 passes a ttl in milliseconds, Keyv 6 an absolute
   * expiry in ms since the epoch; either way the entry itself expires in the
   * bucket. A past expiry (or negative ttl) deletes the key.
   */
  async set(key: string, value: unknown, ttlOrExpires?: number): Promise<boolean> {
    return this.#call(async () => {
      const storageKey = this.#storageKey(key);
      this.#checkValue(key, value);
      const ttl = this.#ttl(ttlOrExpires);
      if (ttl === 'expired') await this.#kv.delete(storageKey);
      else await this.#kv.put(storageKey, value, ttl === undefined ? undefined : { ttl });
      return true;
    });
  }

  /**
   * Stores several values in one atomic patch (entries already expired are
   * deleted instead). Resolves to `true` per entry. (The second signature is
   * how Keyv 5's adapter type declares it.)
   */
  setMany(entries: KeyvK8sKvEntry[]): Promise<boolean[]>;
  setMany(entries: KeyvK8sKvEntry[]): Promise<void>;
  async setMany(entries: KeyvK8sKvEntry[]): Promise<boolean[] | void> {
    return this.#call(async () => {
      const live: KVPutEntry[] = [];
      const expired: string[] = [];
      for (const entry of entries) {
        this.#checkValue(entry.key, entry.value);
        const storageKey = this.#storageKey(entry.key);
        const ttl = this.#ttl(this.#contract === 'keyv6' ? entry.expires : entry.ttl);
        if (ttl === 'expired') expired.push(storageKey);
        else live.push(ttl === undefined ? { key: storageKey, value: entry.value as string } : { key: storageKey, value: entry.value as string, ttl });
      }
      if (live.length > 0) await this.#kv.putMany(live);
      if (expired.length > 0) await this.#kv.deleteMany(expired);
      return entries.map(() => true);
    });
  }

  /** Deletes a key; false if it held no live value. */
  async delete(key: string): Promise<boolean> {
    return this.#call(() => this.#kv.delete(this.#storageKey(key)));
  }

  /**
   * Deletes several keys in one atomic patch. Keyv 6: one boolean per key.
   * Keyv 5 (whose `deleteMany` resolves to one boolean): true if every key was
   * deleted, as Keyv 5 itself answers for adapters without `deleteMany`.
   * (One signature per contract; see {@link contract}.)
   */
  deleteMany(keys: string[]): Promise<boolean>;
  deleteMany(keys: string[]): Promise<boolean[]>;
  async deleteMany(keys: string[]): Promise<boolean[] | boolean> {
    const deleted = await this.#call(() => this.#kv.deleteMany(keys.map((key) => this.#storageKey(key))));
    return this.#contract === 'keyv6' ? deleted : deleted.every(Boolean);
  }

  /** True when the key holds a live (unexpired) value. */
  async has(key: string): Promise<boolean> {
    return this.#call(() => this.#kv.has(this.#storageKey(key)));
  }

  /** For each key, whether it holds a live value (one API call). */
  async hasMany(keys: string[]): Promise<boolean[]> {
    const values = await this.#call(() => this.#kv.getMany(keys.map((key) => this.#storageKey(key))));
    return values.map((value) => value !== undefined);
  }

  /**
   * Deletes every entry of the current Keyv namespace in one patch; other
   * namespaces in the bucket are untouched. Without a namespace, empties the bucket.
   */
  async clear(): Promise<void> {
    await this.#call(() => this.#kv.clear(this.#prefix(this.namespace)));
  }

  /**
   * Yields `[key, value]` for every live entry of the namespace (one read).
   * Keyv 5 passes its namespace and gets keys with their `namespace:` prefix,
   * which it strips; Keyv 6 passes nothing and gets keys without it.
   */
  async *iterator(namespace?: string): AsyncGenerator<[string, string], void> {
    const keyv6 = this.#contract === 'keyv6';
    const prefix = this.#prefix(keyv6 ? this.namespace : (namespace ?? this.namespace));
    const entries = await this.#call(() => this.#kv.entries(prefix));
    for (const entry of entries) {
      yield [keyv6 ? entry.key.slice(prefix.length) : entry.key, textDecoder.decode(entry.value)];
    }
  }

  /**
   * Closes the k8s-kv store this adapter created (its watch keeps the process
   * alive). A store passed in as `kv` stays open. Idempotent.
   */
  async disconnect(): Promise<void> {
    if (this.#disconnected) return;
    this.#disconnected = true;
    if (this.#ownsKv) await this.#kv.close();
  }

  /** Same as {@link disconnect}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.disconnect();
  }

  /** Key prefix of a namespace: `namespace:`, or "" for none. */
  #prefix(namespace: string | undefined): string {
    return namespace ? `${namespace}:` : '';
  }

  /** Keyv 5 prefixes keys itself; under Keyv 6 the adapter does. */
  #storageKey(key: string): string {
    return this.#contract === 'keyv6' ? this.#prefix(this.namespace) + key : key;
  }

  /** ms to live, "expired", or undefined for no expiry, from Keyv 5's ttl or Keyv 6's expires. */
  #ttl(value: number | undefined): number | 'expired' | undefined {
    if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
    if (this.#contract === 'keyv6') {
      if (value < EARLIEST_EXPIRES_MS) {
        throw new InvalidOptionError(
          'contract',
          `KeyvK8sKv follows Keyv 6's contract (an absolute expiry) but was called with ${value}, a relative ttl as Keyv 5 passes it: ` +
            'build the adapter with { contract: "keyv5" } for a Keyv 5 instance (cache-manager 7 and cacheable 2 use Keyv 5).',
        );
      }
      const remaining = value - Date.now();
      return remaining > 0 ? Math.ceil(remaining) : 'expired';
    }
    if (value === 0) return undefined;
    return value > 0 ? value : 'expired';
  }

  #checkValue(key: string, value: unknown): asserts value is string {
    if (typeof value === 'string') return;
    throw new InvalidValueError(
      key,
      `Value for key ${JSON.stringify(key)} is ${describeValue(value)}: the k8s-kv Keyv adapter stores the strings Keyv's serializer produces. ` +
        "Keep Keyv's serialization on (the default), or serialize values to strings yourself.",
    );
  }

  /** Runs a call on the store, naming the bucket in the message of core's errors (see {@link namedError}). */
  async #call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw namedError(error, this.#kv.bucket);
    }
  }

  /**
   * Errors of core's background work (the watch, which retries by itself) become
   * `error` events. Only listeners hear them: with none, they are dropped, and a
   * listener that throws (as Keyv 6 re-emitting with no listener of its own does)
   * cannot crash the process.
   */
  #reportBackgroundError(error: unknown): void {
    for (const listener of this.rawListeners('error')) {
      try {
        listener(namedError(error, this.#kv.bucket));
      } catch {
        // nobody to tell
      }
    }
  }
}
