/**
 * The cached state of one bucket object. A list+watch loop (watch-loop.ts) feeds
 * it the server's changes; this process's writes feed it the server's answers
 * (read-your-writes). Every new state, from either source, is passed on
 * (`onReplace`): the bucket turns them into per-key events for `kv.watch()`.
 */
import type { KubeApi, KubeObject, ObjectKind } from '../kube/port.ts';
import { emptySnapshot, type Snapshot } from './snapshot.ts';
import { rvNumber, WatchLoop } from './watch-loop.ts';

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
  /** Called with every snapshot the cache takes on, and the one it replaces (undefined: the first). */
  onReplace?: ((snapshot: Snapshot, previous: Snapshot | undefined) => void) | undefined;
  /**
   * The list+watch loop to take this object's state from, shared with other
   * objects (a sharded bucket's shards: one LIST and one watch by label for all).
   * Default: a loop of its own, selecting the object by name.
   */
  loop?: WatchLoop | undefined;
  /** Longest backoff between reconnects of a loop of its own (default 5000 ms). */
  maxBackoffMs?: number | undefined;
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

  constructor(settings: WatchCacheSettings) {
    this.s = settings;
    // Selects the object by name, so a foreign object of that name is seen (and refused) too.
    this.loop =
      settings.loop ??
      new WatchLoop({
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

  /** The last snapshot the cache took on, whether or not the watch is connected now (undefined before the first list). */
  last(): Snapshot | undefined {
    return this.closed || this.failure ? undefined : this.snapshot;
  }

  /** True while the first list is under way. */
  get listing(): boolean {
    return this.loop.starting !== undefined && this.snapshot === undefined && !this.closed;
  }

  /** True once the cache holds a snapshot (it was started and not closed). */
  get active(): boolean {
    return this.snapshot !== undefined && !this.closed;
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

  /** Stops taking changes; the loop stops with its last cache (at once, if it is this cache's own). */
  close(): void {
    this.closed = true;
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
    this.s.onReplace?.(next, previous);
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
