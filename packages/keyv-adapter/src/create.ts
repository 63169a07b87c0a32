/**
 * `createKeyv(options)`: a Keyv instance over a k8s-kv bucket, with
 * `keyv.iterator` available on Keyv 5 too (see {@link enableIterator}).
 */
import { Keyv } from 'keyv';
import { KeyvK8sKv, type KeyvK8sKvOptions } from './adapter.ts';

/** Options of {@link createKeyv}: the adapter's options plus Keyv's `namespace` and `ttl`. */
export interface CreateKeyvOptions extends KeyvK8sKvOptions {
  /** Keyv namespace (key prefix, isolates clear() and iterator()). Default "keyv" (Keyv 5's default). */
  namespace?: string;
  /** Default time to live of the Keyv instance, in milliseconds (default: none). */
  ttl?: number;
}

/**
 * Makes `keyv.iterator()` available on a Keyv 5 instance whose store has an
 * `iterator` method. Keyv 5 wires `keyv.iterator` only for adapters it knows
 * by name (`opts.dialect` or `opts.url` mentioning sqlite, postgres, mysql,
 * mongo, redis, valkey or etcd); this does the same wiring, through Keyv 5's
 * own `generateIterator` (which deserializes, skips other namespaces and
 * deletes expired entries). Keyv 6 has `iterator()` built in: it is returned
 * unchanged. Call it again after replacing `keyv.store`.
 *
 * @returns the same Keyv instance.
 */
export function enableIterator<T extends object>(keyv: T): T {
  const k = keyv as {
    iterator?: unknown;
    store?: { iterator?: unknown };
    generateIterator?: (iterator: (namespace?: string) => AsyncGenerator<unknown, void>) => unknown;
  };
  if (typeof k.iterator === 'function') return keyv;
  const store = k.store;
  if (!store || typeof store.iterator !== 'function') {
    throw new TypeError('enableIterator(keyv): the Keyv store has no iterator() method.');
  }
  if (typeof k.generateIterator !== 'function') {
    throw new TypeError('enableIterator(keyv): not a Keyv 5 instance (it has neither iterator() nor generateIterator()).');
  }
  k.iterator = k.generateIterator((store.iterator as (namespace?: string) => AsyncGenerator<unknown, void>).bind(store));
  return keyv;
}

/**
 * Creates a Keyv instance (of the `keyv` major installed next to this package)
 * over a {@link KeyvK8sKv} store, with `iterator()` available. Lazy: no API
 * call until first use. Call `await keyv.disconnect()` when done so the
 * process can exit.
 *
 * @example
 * const keyv = createKeyv({ bucket: 'my-cache', ttl: 60_000 });
 * await keyv.set('user:1', { name: 'Ada' });
 */
export function createKeyv(options: CreateKeyvOptions | string): Keyv {
  const { ttl, namespace = 'keyv', ...storeOptions } = typeof options === 'string' ? { bucket: options } : (options ?? {});
  const store = new KeyvK8sKv({ ...storeOptions, namespace });
  const keyv = new Keyv({ store, namespace, ...(ttl === undefined ? {} : { ttl }) });
  return enableIterator(keyv);
}
