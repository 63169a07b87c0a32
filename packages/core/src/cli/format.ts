/**
 * Formatting and parsing helpers of the CLI: durations, sizes, times, tables,
 * and the machine-readable output of -o json|yaml.
 */
import { dump } from 'js-yaml';
import stringWidth from 'string-width';
import type { OutputFormat } from './program.ts';

/** A mistake in the command line (exit code 2). */
export class UsageError extends Error {
  override name = 'UsageError';
  /** The command whose help to point at, if any. */
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.command = command;
  }
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a duration such as `500ms`, `30s`, `10m`, `1h`, `1h30m`, `1.5h` or
 * `7d` to milliseconds. A bare number is refused (say the unit).
 */
export function parseDuration(text: string, option = '--ttl', command?: string): number {
  const bad = (why = 'use a number with a unit (ms, s, m, h, d)'): never => {
    throw new UsageError(`invalid ${option} ${JSON.stringify(text)}: ${why}, e.g. 500ms, 30s, 10m, 1h30m or 7d`, command);
  };
  if (/^-\d/.test(text)) bad('a duration cannot be negative; give a positive one');
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(text)) bad();
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) total += Number(amount) * UNIT_MS[unit!]!;
  const ms = Math.round(total);
  if (!Number.isFinite(ms) || ms <= 0) bad('a duration must be longer than 0');
  return ms;
}

/** 512 B, 12.3 KiB, 1 MiB. */
export function formatBytes(bytes: number): string {
  const fixed = (n: number): string => n.toFixed(1).replace(/\.0$/, '');
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${fixed(bytes / 1024)} KiB`;
  return `${fixed(bytes / (1024 * 1024))} MiB`;
}

/** Share of the limit used, e.g. "12.5%". */
export function formatPercent(bytes: number, limit: number): string {
  return `${((bytes / limit) * 100).toFixed(1)}%`;
}

/** An ISO 8601 UTC time without milliseconds, or "-". */
export function formatTime(date: Date | undefined): string {
  if (!date || Number.isNaN(date.getTime())) return '-';
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A key or text for a table or a line: as is when printable, else JSON-quoted (so a line stays a line). */
export function printable(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: it looks for control characters, to quote them
  if (text === '' || /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(text) || text.trim() !== text || text.startsWith('"')) return JSON.stringify(text);
  return text;
}

/**
 * Left-aligned columns separated by two spaces (the last column is not
 * padded). Widths are terminal columns, not string lengths: a CJK character
 * or an emoji takes two, a combining mark none.
 */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(stringWidth(h), ...rows.map((r) => stringWidth(r[i] ?? ''))));
  const pad = (cell: string, width: number): string => cell + ' '.repeat(Math.max(0, width - stringWidth(cell)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : pad(cell, widths[i]!)))
      .join('  ')
      .trimEnd();
  return [header, ...rows].map(line).join('\n') + '\n';
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The bytes as a string when they are valid UTF-8, else undefined. */
export function utf8OrUndefined(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Base64 of bytes. */
export function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** A value as -o json (indented JSON) or -o yaml prints it, with a final newline. */
export function formatData(value: unknown, format: OutputFormat): string {
  if (format === 'yaml') return dump(value, { lineWidth: -1, noRefs: true });
  return JSON.stringify(value, null, 2) + '\n';
}
