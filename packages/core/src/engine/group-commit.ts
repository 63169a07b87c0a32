/**
 * Group commit of one object's puts: calls made in the same tick, and calls made
 * while a write is in flight, are sent as one patch; each caller still gets its
 * own outcome. After a write that took far longer than usual (other writers at
 * the same object), the next one waits a little first (write-pacer.ts).
 */
// On Node's own timers, not the globals: a test that fakes the global timers
// (vi.useFakeTimers) would otherwise never see a put settle.
import { setImmediate } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { BucketFullError } from '../errors.ts';
import type { PreparedEntry } from '../codec/entry.ts';
import { WritePacer } from './write-pacer.ts';

interface QueuedPut {
  entries: PreparedEntry[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Coalesces the puts of one object into as few atomic writes as it can. */
export class GroupCommit {
  /** Writes waiting for the next commit. */
  private queue: QueuedPut[] = [];
  private flushing = false;
  private flushScheduled = false;
  private readonly pacer = new WritePacer();

  private readonly write: (entries: PreparedEntry[]) => Promise<void>;

  /** `write` sends one atomic write of entries (later entries for the same key win). */
  constructor(write: (entries: PreparedEntry[]) => Promise<void>) {
    this.write = write;
  }

  /** Resolves once `entries` are written (in one write with whatever else was queued), or rejects with this caller's own failure. */
  put(entries: PreparedEntry[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ entries, resolve, reject });
      if (!this.flushing && !this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => {
          this.flushScheduled = false;
          void this.flush();
        });
      }
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const pause = this.pacer.delayMs();
        if (pause > 0) await sleep(pause); // writes queued meanwhile join this batch
        const batch = this.queue.splice(0, this.queue.length);
        try {
          const started = performance.now();
          await this.write(batch.flatMap((b) => b.entries));
          this.pacer.record(performance.now() - started);
          for (const b of batch) b.resolve();
        } catch (error) {
          if (batch.length === 1 || !(error instanceof BucketFullError)) {
            for (const b of batch) b.reject(error);
            continue;
          }
          // Together they do not fit; alone some may. Each caller gets its own outcome.
          for (const b of batch) {
            try {
              await this.write(b.entries);
              b.resolve();
            } catch (own) {
              b.reject(own);
            }
          }
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}
