/**
 * The CLI's input and output: stdout/stderr writers that respect
 * backpressure, stdin reading, and progress lines for long operations.
 */
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';

/** The streams a CLI run uses (the process's, or test doubles). */
export interface CliIo {
  stdin: Readable & { isTTY?: boolean };
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean };
}

/** Writes a chunk, waiting for the stream to drain when its buffer is full. */
export async function write(stream: Writable, chunk: string | Uint8Array): Promise<void> {
  if (!stream.write(chunk)) await once(stream, 'drain');
}

/** Reads a stream to its end. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

/**
 * Progress of a long operation on stderr, e.g. `imported 1200/2000 keys (60%)`.
 * Shown only when enabled (stderr is a TTY, or --progress); on a TTY the line
 * is rewritten in place, otherwise each update is its own line. The final
 * summary line is always written.
 */
export class Progress {
  private readonly stream: Writable & { isTTY?: boolean };
  private readonly enabled: boolean;
  private readonly verb: string;
  private readonly total: number;
  private lastShown = 0;
  private lastDone = -1;
  private open = false;

  constructor(stream: Writable & { isTTY?: boolean }, enabled: boolean, verb: string, total: number) {
    this.stream = stream;
    this.enabled = enabled;
    this.verb = verb;
    this.total = total;
  }

  /** Reports `done` of `total`; `force` shows it even if the last update was a moment ago. */
  update(done: number, force = false): void {
    if (!this.enabled || this.total === 0 || done === this.lastDone) return;
    const now = Date.now();
    if (!force && now - this.lastShown < 100 && done < this.total) return;
    this.lastShown = now;
    this.lastDone = done;
    const line = `${this.verb} ${done}/${this.total} keys (${Math.floor((done / this.total) * 100)}%)`;
    if (this.stream.isTTY) {
      this.stream.write(`\r\u001b[K${line}`);
      this.open = true;
    } else {
      this.stream.write(`${line}\n`);
    }
  }

  /** Ends the progress display with a summary line (always written). */
  finish(summary: string): void {
    this.clear();
    this.stream.write(`${summary}\n`);
  }

  /** Removes an in-place progress line (before an error message). */
  clear(): void {
    if (this.open) this.stream.write('\r\u001b[K');
    this.open = false;
  }
}
