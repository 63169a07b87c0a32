/**
 * KeyvK8sKv: a Keyv storage adapter over a k8s-kv bucket (one ConfigMap).
 *
 * One class serves Keyv 5 and Keyv 6. The two majors call adapters
 * differently (Keyv 5 prefixes keys itself and passes a relative ttl; Keyv 6
 * leaves key prefixing to the adapter and passes an absolute `expires`), so
 * the adapter starts with the Keyv 5 contract and switches to the Keyv 6
 * contract when Keyv 6 reads its `capabilities` (Keyv 6 does so in its
 * constructor and store setter, before any other call; Keyv 5 never does).
 *
 * Both contracts store the same thing under the same key: Keyv's serialized
 * value, unchanged, under `namespace:key` (or `key` without a namespace).
 */
import { createKV, InvalidOptionError, InvalidValueError, type KV, type KVOptions, type KVPutEntry, type RetryOptions } from '@k8s-kv/core';
import type { KubeApi } from '@k8s-kv/core';
import { AdapterEmitter } from './emitter.ts';

/** Options of {@link KeyvK8sKv}. */
export interface KeyvK8sKvOptions {
  /** Bucket = ConfigMap name (1-63 lowercase letters, digits, "-" or "."). Required unless `kv` is given. */
  bucket?: string;
  /**
   * Kubernetes namespace of the ConfigMap. Default: the pod's own namespace in
   * a cluster, else the kubeconfig context's, else "default". (Named so because
   * Keyv owns the word `namespace`: its key prefix.)
   */
  kubeNamespace?: string;
  /** App the bucket belongs to (label `k8s-kv.io/app`; default "default"). */
  app?: string;
  /** Credentials and cluster. Default: `KubeConfig.loadFromDefault()` on first use. */
  kubeConfig?: KVOptions['kubeConfig'];
  /** The Kubernetes API port (e.g. `createMemoryApi()` from `@k8s-kv/core/testing` in tests). */
  api?: KubeApi;
  /** Compress values with DEFLATE when it saves space (default true). */
  compress?: boolean;
  /** Serve reads from core's list+watch cache of the bucket (default true). */
  cache?: boolean;
  /** Backoff for transient API failures (network errors, 429, 5xx). */
  retry?: RetryOptions;
  /**
   * Spread the bucket over this many ConfigMaps (1-256, default 1) when the
   * adapter creates it: up to `shards` MiB, and writes that stay fast as the
   * bucket grows; `setMany`/`deleteMany`/`clear` are then atomic per shard.
   * An existing bucket keeps its layout (core's `shards`).
   */
  shards?: number;
  /**
   * Use this k8s-kv store instead of creating one (e.g. to share one bucket and
   * one watch between several Keyv namespaces). It stays yours: `disconnect()`
   * does not close it. Excludes the options above.
   */
  kv?: KV;
  /** Keyv namespace (key prefix) to start with. Keyv sets it when it has one of its own. */
  namespace?: string;
}

/** What `adapter.opts` holds: the plain options, plus what Keyv 5 reads. */
export interface KeyvK8sKvOpts {
  bucket: string | undefined;
  kubeNamespace: string | undefined;
  app: string | undefined;
  compress: boolean | undefined;
  cache: boolean | undefined;
  /** Adapter name, for Keyv 5 (which reads `opts.dialect`). */
  dialect: 'k8s-kv';
  /**
   * Always the string "k8s-kv:". Keyv 5's constructor calls `opts.url.includes(...)`
   * on adapters that have an `iterator`, and throws when `url` is not a string.
   */
  url: string;
  [option: string]: unknown;
}

/** Which Keyv major's calling convention the adapter follows. */
export type KeyvContract = 'keyv5' | 'keyv6';

/** A `set`/`setMany` entry as Keyv 5 (`ttl`, relative ms) or Keyv 6 (`expires`, absolute ms) passes it. */
export interface KeyvK8sKvEntry {
  key: string;
  value: unknown;
  ttl?: number;
  expires?: number;
}

/** The methods Keyv 6's capability check looks for. */
const STORAGE_METHODS = ['get', 'getMany', 'has', 'hasMany', 'set', 'setMany', 'delete', 'deleteMany', 'clear', 'disconnect', 'iterator'] as const;

const CORE_OPTIONS = ['bucket', 'kubeNamespace', 'app', 'kubeConfig', 'api', 'compress', 'cache', 'retry', 'shards'] as const;

const textDecoder = new TextDecoder();

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return 'a Uint8Array';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/**
 * Keyv storage adapter keeping entries in a Kubernetes ConfigMap through
 * `@k8s-kv/core`. Lazy: no API call and no kubeconfig read until first use.
 *
 * @example
 * import Keyv from 'keyv';
 * import { KeyvK8sKv } from '@k8s-kv/keyv-adapter';
 * const keyv = new Keyv({ store: new KeyvK8sKv({ bucket: 'my-cache' }) });
 */
export class KeyvK8sKv extends AdapterEmitter {
  /** Options, as official Keyv adapters expose them. */
  readonly opts: KeyvK8sKvOpts;
  /** Keyv namespace (key prefix). Keyv sets it; undefined or "" means none. */
  namespace: string | undefined;
  readonly #kv: KV;
  readonly #ownsKv: boolean;
  #contract: KeyvContract = 'keyv5';
  #disconnected = false;

  constructor(options: KeyvK8sKvOptions | string) {
    super();
    if (typeof options !== 'string' && (!options || typeof options !== 'object')) {
      throw new InvalidOptionError('options', 'KeyvK8sKv needs options with at least { bucket }, or a bucket name.');
    }
    const o: KeyvK8sKvOptions = typeof options === 'string' ? { bucket: options } : options;
    if (o.kv) {
      const extra = CORE_OPTIONS.filter((name) => o[name] !== undefined);
      if (extra.length > 0) {
        throw new InvalidOptionError(extra[0]!, `KeyvK8sKv: pass either "kv" or the options that create one (${extra.join(', ')}), not both.`);
      }
      this.#kv = o.kv;
      this.#ownsKv = false;
    } else {
      if (o.bucket === undefined) throw new InvalidOptionError('bucket', 'KeyvK8sKv needs a "bucket" (the ConfigMap name), or an existing store as "kv".');
      // createKV treats an option given as undefined as not given.
      const { bucket, app, kubeConfig, api, compress, cache, retry, shards } = o;
      this.#kv = createKV({ bucket, namespace: o.kubeNamespace, app, kubeConfig, api, compress, cache, retry, shards, onError: (error) => this.#reportBackgroundError(error) });
      this.#ownsKv = true;
    }
    this.namespace = o.namespace;
    this.opts = {
      bucket: o.kv ? o.kv.bucket : o.bucket,
      kubeNamespace: o.kubeNamespace,
      app: o.app,
      compress: o.compress,
      cache: o.cache,
      dialect: 'k8s-kv',
      url: 'k8s-kv:',
    };
  }

  /** The k8s-kv store underneath (for `stats()`, `teardown()`, ...). */
  get kv(): KV {
    return this.#kv;
  }

  /** The calling convention in use: "keyv6" once Keyv 6 has read {@link capabilities}, else "keyv5". */
  get contract(): KeyvContract {
    return this.#contract;
  }

  /**
   * Keyv 6 capability descriptor (`expires: true` opts in to the Keyv 6
   * contract). Reading it switches this adapter to that contract: keys are
   * prefixed by the adapter, `set` takes an absolute `expires`, `deleteMany`
   * returns one boolean per key. Only Keyv 6 reads it.
   */
  get capabilities(): {
    compatible: true;
    store: 'keyvStorage';
    methods: Record<(typeof STORAGE_METHODS)[number], { exists: true; methodType: 'async' | 'sync' }>;
    expires: true;
  } {
    this.#contract = 'keyv6';
    const methods = {} as Record<(typeof STORAGE_METHODS)[number], { exists: true; methodType: 'async' | 'sync' }>;
    for (const name of STORAGE_METHODS) {
      const method = this[name] as unknown as { constructor: { name: string } };
      methods[name] = { exists: true, methodType: method.constructor.name === 'AsyncFunction' ? 'async' : 'sync' };
    }
    return { compatible: true, store: 'keyvStorage', methods, expires: true };
  }

  /**
   * Reads a value (Keyv's serialized string), or undefined when missing or
   * expired. (`Value` is there for Keyv's adapter types; the value is the string stored.)
   */
  async get<Value = string>(key: string): Promise<Value | undefined> {
    return (await this.#kv.getText(this.#storageKey(key))) as Value | undefined;
  }

  /** Reads several values in one API call, in order (undefined where missing or expired). */
  async getMany<Value = string>(keys: string[]): Promise<Array<Value | undefined>> {
    const values = await this.#kv.getMany(keys.map((key) => this.#storageKey(key)));
    return values.map((value) => (value === undefined ? undefined : (textDecoder.decode(value) as Value)));
  }

  /**
   * Stores a value. Keyv 5 passes a ttl in milliseconds, Keyv 6 an absolute
   * expiry in ms since the epoch; either way the entry itself expires in the
   * bucket. A past expiry (or negative ttl) deletes the key.
   */
  async set(key: string, value: unknown, ttlOrExpires?: number): Promise<boolean> {
    const storageKey = this.#storageKey(key);
    this.#checkValue(key, value);
    const ttl = this.#ttl(ttlOrExpires);
    if (ttl === 'expired') await this.#kv.delete(storageKey);
    else await this.#kv.put(storageKey, value, ttl === undefined ? undefined : { ttl });
    return true;
  }

  /**
   * Stores several values in one atomic patch (entries already expired are
   * deleted instead). Resolves to `true` per entry. (The second signature is
   * how Keyv 5's adapter type declares it.)
   */
  setMany(entries: KeyvK8sKvEntry[]): Promise<boolean[]>;
  setMany(entries: KeyvK8sKvEntry[]): Promise<void>;
  async setMany(entries: KeyvK8sKvEntry[]): Promise<boolean[] | void> {
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
  }

  /** Deletes a key; false if it held no live value. */
  async delete(key: string): Promise<boolean> {
    return this.#kv.delete(this.#storageKey(key));
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
    const deleted = await this.#kv.deleteMany(keys.map((key) => this.#storageKey(key)));
    return this.#contract === 'keyv6' ? deleted : deleted.every(Boolean);
  }

  /** True when the key holds a live (unexpired) value. */
  async has(key: string): Promise<boolean> {
    return this.#kv.has(this.#storageKey(key));
  }

  /** For each key, whether it holds a live value (one API call). */
  async hasMany(keys: string[]): Promise<boolean[]> {
    const values = await this.#kv.getMany(keys.map((key) => this.#storageKey(key)));
    return values.map((value) => value !== undefined);
  }

  /**
   * Deletes every entry of the current Keyv namespace in one patch; other
   * namespaces in the bucket are untouched. Without a namespace, empties the bucket.
   */
  async clear(): Promise<void> {
    await this.#kv.clear(this.#prefix(this.namespace));
  }

  /**
   * Yields `[key, value]` for every live entry of the namespace (one read).
   * Keyv 5 passes its namespace and gets keys with their `namespace:` prefix,
   * which it strips; Keyv 6 passes nothing and gets keys without it.
   */
  async *iterator(namespace?: string): AsyncGenerator<[string, string], void> {
    const keyv6 = this.#contract === 'keyv6';
    const prefix = this.#prefix(keyv6 ? this.namespace : (namespace ?? this.namespace));
    const entries = await this.#kv.entries(prefix);
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
        'Keep Keyv\'s serialization on (the default), or serialize values to strings yourself.',
    );
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
        listener(error);
      } catch {
        // nobody to tell
      }
    }
  }
}
