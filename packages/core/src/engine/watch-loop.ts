/**
 * The list+watch loop that feeds watch caches (watch-cache.ts). client-node's
 * informer does not reliably restart, so this owns the loop: list, watch from
 * the list's resourceVersion, re-watch after the server's timeouts, back off
 * after errors, relist after 410 Gone. One loop feeds the caches of all the
 * objects of a bucket (one LIST and one watch by label), or one object's cache.
 */
import { runUnder } from '../kube/call-deadline.ts';
import { KubeApiError, type KubeApi, type KubeObject, type ObjectKind, type WatchHandle } from '../kube/port.ts';
import { isTransient } from './api-errors.ts';
import type { WatchCache } from './watch-cache.ts';

/** A resourceVersion as a number (-1 when it is not one), to order the states of an object. */
export function rvNumber(rv: string | undefined): number {
  const n = Number(rv);
  return Number.isFinite(n) ? n : -1;
}

/** Settings of a {@link WatchLoop}. */
export interface WatchLoopSettings {
  api: KubeApi;
  kind: ObjectKind;
  namespace: string;
  /** Which objects to list and watch: one by name (`metadata.name=...`), or a bucket's shards by label. */
  selectors: { fieldSelector: string } | { labelSelector: string };
  /** Reports errors of the loop (they are also retried). */
  onError?: ((error: unknown) => void) | undefined;
  /** Longest backoff between reconnects (default 5000 ms). */
  maxBackoffMs?: number | undefined;
  /**
   * Called for an object of a name no cache is registered for (a bucket's new part):
   * the owner may register one now, which then takes the object.
   */
  onUnknown?: ((name: string, object: KubeObject) => void) | undefined;
}

/**
 * The list+watch loop: list, watch from the list's resourceVersion, re-watch after
 * the server's timeouts, back off after errors, relist after 410 Gone. It hands
 * every object it sees to the {@link WatchCache} registered under its name.
 */
export class WatchLoop {
  private readonly s: WatchLoopSettings;
  private readonly caches = new Map<string, WatchCache>();
  /** The latest state of every object the loop has seen (undefined once deleted), to seed a cache registered late. */
  private readonly latest = new Map<string, KubeObject | undefined>();
  private listRv = '';
  private handle: WatchHandle | undefined;
  private timer: NodeJS.Timeout | undefined;
  private backoffMs = 100;
  /** True while the watch is connected. */
  connected = false;
  /** True once closed (by its last cache, or by its owner). */
  closed = false;
  /** The first list, while under way (and once it succeeded). */
  starting: Promise<void> | undefined;

  constructor(settings: WatchLoopSettings) {
    this.s = settings;
  }

  /** Hands the objects named `name` to `cache` from now on (and what the loop already saw of it). */
  register(name: string, cache: WatchCache): void {
    this.caches.set(name, cache);
    if (this.listRv !== '' && !this.closed) cache.listed(this.latest.get(name), this.listRv);
  }

  /** The resourceVersion the loop has seen the bucket's objects up to ('' before the first list). */
  get resourceVersion(): string {
    return this.listRv;
  }

  /** Names of the objects the loop has seen and that exist. */
  names(): string[] {
    return [...this.latest].filter(([, object]) => object !== undefined).map(([name]) => name);
  }

  /** Stops handing objects to `name`'s cache; the loop stops when no cache is left. */
  unregister(name: string): void {
    this.caches.delete(name);
    if (this.caches.size === 0) this.close();
  }

  /**
   * Starts the loop (idempotent); resolves once the first list is in, rejects if it failed.
   * The loop is background work: it runs outside the deadline of the call that started it
   * (its requests are bounded by the request timeout alone).
   */
  start(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('cache closed'));
    this.starting ??= runUnder(undefined, () => this.relist()).catch((error: unknown) => {
      this.starting = undefined;
      throw error;
    });
    return this.starting;
  }

  /** Stops the watch and every timer. */
  close(): void {
    this.closed = true;
    this.connected = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.handle?.stop();
    this.handle = undefined;
  }

  private async relist(): Promise<void> {
    const list = await this.s.api.list(this.s.kind, this.s.namespace, this.s.selectors);
    if (this.closed) return;
    const byName = new Map(list.items.map((item) => [item.metadata.name, item]));
    this.latest.clear();
    for (const [name, object] of byName) this.latest.set(name, object);
    this.listRv = list.resourceVersion;
    for (const [name, cache] of [...this.caches]) cache.listed(byName.get(name), list.resourceVersion);
    for (const [name, object] of byName) if (!this.caches.has(name)) this.s.onUnknown?.(name, object);
    await this.watch();
  }

  private async watch(): Promise<void> {
    if (this.closed) return;
    this.handle = await this.s.api.watch(this.s.kind, this.s.namespace, {
      ...this.s.selectors,
      resourceVersion: this.listRv,
      onEvent: (event) => {
        if (this.closed) return;
        if (event.object?.metadata?.resourceVersion) this.listRv = event.object.metadata.resourceVersion;
        if (event.type === 'BOOKMARK') return;
        const name = event.object.metadata.name;
        const object = event.type === 'DELETED' ? undefined : event.object;
        this.latest.set(name, object);
        this.backoffMs = 100;
        const cache = this.caches.get(name);
        if (cache) cache.watched(object, rvNumber(event.object.metadata.resourceVersion));
        else if (object) this.s.onUnknown?.(name, object); // registering seeds the new cache with `latest`
      },
      onClose: (error) => this.reconnect(error),
    });
    if (this.closed) {
      this.handle.stop();
      return;
    }
    this.connected = true;
  }

  /** Called when a watch ends: resume, back off, or relist. */
  private reconnect(error: unknown): void {
    this.connected = false;
    this.handle = undefined;
    if (this.closed) return;
    const gone = error instanceof KubeApiError && (error.status === 410 || (error.status === 504 && /too old/i.test(error.message)));
    if (error && !gone) this.s.onError?.(error);
    const delay = error && !gone ? this.backoffMs : 0;
    if (error && !gone) this.backoffMs = Math.min(this.backoffMs * 2, this.s.maxBackoffMs ?? 5000);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const next = gone ? this.relist() : this.watch();
      next.catch((failure: unknown) => {
        if (this.closed) return;
        // A watch that cannot start with 410 needs a relist; other failures back off and try again.
        const expired = failure instanceof KubeApiError && failure.status === 410;
        if (expired) this.listRv = '';
        if (!isTransient(failure) && !expired) this.s.onError?.(failure);
        this.reconnect(expired ? new KubeApiError(410, 'Expired', 'relist') : failure);
      });
    }, delay);
  }
}
