/**
 * A list+watch cache of bucket objects. client-node's informer does not
 * reliably restart, so this owns the loop ({@link WatchLoop}): list, watch from
 * the list's resourceVersion, re-watch after the server's timeouts, back off
 * after errors, relist after 410 Gone. One loop feeds one object's cache, or
 * the caches of all the shards of a sharded bucket. Writes feed it the server's answer
 * (read-your-writes). Every change, from either source, is turned into
 * per-key events for `kv.watch()` listeners.
 */
import { KubeApiError, type KubeApi, type KubeObject, type ObjectKind, type WatchHandle } from '../kube/port.ts';
import { isTransient } from './api-errors.ts';
import { emptySnapshot, type Snapshot } from './snapshot.ts';

/** A change of one key. */
export interface ChangeEvent {
  /** "put" for a new or changed value, "delete" for a removed key. */
  type: 'put' | 'delete';
  /** The user key. */
  key: string;
}

/** Listener of {@link ChangeEvent}s. */
export type ChangeListener = (event: ChangeEvent) => void;

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
}

/** Settings of a {@link WatchCache}. */
export interface WatchCacheSettings {
  api: KubeApi;
  kind: ObjectKind;
  namespace: string;
  name: string;
  /** Decodes (and ownership-checks) an object; throws for foreign objects. */
  decode: (object: KubeObject) => Snapshot;
  /** Reports errors of the background loop (they are also retried). */
  onError?: ((error: unknown) => void) | undefined;
  /** Called with every snapshot the cache takes on (after its key events). */
  onReplace?: ((snapshot: Snapshot) => void) | undefined;
  /**
   * The list+watch loop to take this object's state from, shared with other
   * objects (a sharded bucket's shards: one LIST and one watch by label for all).
   * Default: a loop of its own, selecting the object by name.
   */
  loop?: WatchLoop | undefined;
  /** Longest backoff between reconnects of a loop of its own (default 5000 ms). */
  maxBackoffMs?: number | undefined;
}

function rvNumber(rv: string | undefined): number {
  const n = Number(rv);
  return Number.isFinite(n) ? n : -1;
}

/**
 * The list+watch loop: list, watch from the list's resourceVersion, re-watch after
 * the server's timeouts, back off after errors, relist after 410 Gone. It hands
 * every object it sees to the {@link WatchCache} registered under its name.
 */
export class WatchLoop {
  private readonly s: WatchLoopSettings;
  private readonly caches = new Map<string, WatchCache>();
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

  /** Hands the objects named `name` to `cache` from now on. */
  register(name: string, cache: WatchCache): void {
    this.caches.set(name, cache);
  }

  /** Stops handing objects to `name`'s cache; the loop stops when no cache is left. */
  unregister(name: string): void {
    this.caches.delete(name);
    if (this.caches.size === 0) this.close();
  }

  /** Starts the loop (idempotent); resolves once the first list is in, rejects if it failed. */
  start(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('cache closed'));
    this.starting ??= this.relist().catch((error: unknown) => {
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
    this.listRv = list.resourceVersion;
    const byName = new Map(list.items.map((item) => [item.metadata.name, item]));
    for (const [name, cache] of this.caches) cache.listed(byName.get(name), list.resourceVersion);
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
        const cache = this.caches.get(event.object.metadata.name);
        if (!cache) return;
        this.backoffMs = 100;
        cache.watched(event.type === 'DELETED' ? undefined : event.object, rvNumber(event.object.metadata.resourceVersion));
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
    const gone = error instanceof KubeApiError && (error.status === 410 || error.status === 504 && /too old/i.test(error.message));
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

/** The cached state of one object, fed by a {@link WatchLoop} and by the answers to this process's writes. */
export class WatchCache {
  private readonly s: WatchCacheSettings;
  private readonly loop: WatchLoop;
  private snapshot: Snapshot | undefined;
  private failure: unknown;
  private objectRv = -1;
  /** The newest write answer offered while the first list was under way. */
  private pending: KubeObject | undefined;
  private closed = false;
  private readonly listeners = new Set<ChangeListener>();

  constructor(settings: WatchCacheSettings) {
    this.s = settings;
    // Selects the object by name, so a foreign object of that name is seen (and refused) too.
    this.loop = settings.loop ?? new WatchLoop({
      api: settings.api,
      kind: settings.kind,
      namespace: settings.namespace,
      selectors: { fieldSelector: `metadata.name=${settings.name}` },
      onError: settings.onError,
      maxBackoffMs: settings.maxBackoffMs,
    });
    this.loop.register(settings.name, this);
  }

  /** Starts the cache (idempotent); resolves once the first list is in, rejects if it failed. */
  start(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('cache closed'));
    return this.loop.start();
  }

  /** The cached snapshot while the watch is healthy; undefined means "read from the API server". */
  current(): Snapshot | undefined {
    if (!this.loop.connected || this.closed) return undefined;
    if (this.failure) throw this.failure;
    return this.snapshot;
  }

  /** True while the first list is under way. */
  get listing(): boolean {
    return this.loop.starting !== undefined && this.snapshot === undefined && !this.closed;
  }

  /** True once the cache holds a snapshot (it was started and not closed). */
  get active(): boolean {
    return this.snapshot !== undefined && !this.closed;
  }

  /** True while the watch is connected. */
  get healthy(): boolean {
    return this.loop.connected && !this.closed;
  }

  /** Applies the server's answer to a write (or a read), if it is newer than what the cache holds. */
  offer(object: KubeObject | undefined, snapshot: Snapshot): void {
    if (this.closed) return;
    if (this.snapshot === undefined) {
      // Still listing: keep the newest answer, to apply if the list turns out older.
      if (object && (!this.pending || rvNumber(object.metadata.resourceVersion) > rvNumber(this.pending.metadata.resourceVersion))) this.pending = object;
      return;
    }
    const rv = object ? rvNumber(object.metadata.resourceVersion) : -1;
    if (object && rv !== -1 && rv <= this.objectRv) return;
    this.replace(snapshot, rv);
  }

  /** Subscribes to per-key changes. */
  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops taking changes; the loop stops with its last cache (at once, if it is this cache's own). */
  close(): void {
    this.closed = true;
    this.listeners.clear();
    this.loop.unregister(this.s.name);
  }

  /** The loop listed the object (undefined: absent as of the list's resourceVersion). */
  listed(object: KubeObject | undefined, listRv: string): void {
    const listedRv = rvNumber(object ? object.metadata.resourceVersion : listRv);
    // A write this process made while the list was under way can be newer than the list.
    if (this.snapshot === undefined || listedRv === -1 || listedRv > this.objectRv) {
      this.objectRv = -1;
      this.applyObject(object, listedRv);
    }
    const pending = this.pending;
    this.pending = undefined;
    if (pending) this.applyObject(pending);
  }

  /** The watch saw the object change (undefined: deleted at `rv`). */
  watched(object: KubeObject | undefined, rv: number): void {
    if (this.closed) return;
    this.applyObject(object, rv);
  }

  private replace(next: Snapshot, rv: number): void {
    const previous = this.snapshot;
    this.snapshot = next;
    this.failure = undefined;
    if (rv !== -1) this.objectRv = rv;
    this.s.onReplace?.(next);
    if (!previous || this.listeners.size === 0) return;
    const events: ChangeEvent[] = [];
    for (const [key, entry] of next.entries) {
      if (previous.entries.get(key)?.b64 !== entry.b64) events.push({ type: 'put', key });
    }
    for (const key of previous.entries.keys()) if (!next.entries.has(key)) events.push({ type: 'delete', key });
    for (const event of events) {
      for (const listener of [...this.listeners]) {
        try {
          listener(event);
        } catch (error) {
          this.s.onError?.(error);
        }
      }
    }
  }

  /** Applies an object (or its absence, as of `absentAt`) if it is newer than what the cache holds. */
  private applyObject(object: KubeObject | undefined, absentAt = -1): void {
    if (!object) {
      if (absentAt !== -1 && absentAt <= this.objectRv) return;
      this.replace(emptySnapshot(), -1);
      this.objectRv = absentAt;
      return;
    }
    const rv = rvNumber(object.metadata.resourceVersion);
    if (rv !== -1 && rv <= this.objectRv) return;
    try {
      this.replace(this.s.decode(object), rv);
    } catch (error) {
      // A foreign object took the bucket's name: reads report it.
      this.failure = error;
      this.objectRv = rv;
    }
  }
}
