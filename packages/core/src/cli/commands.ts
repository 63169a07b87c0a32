/**
 * The commands of the `k8s-kv` CLI. Each opens the bucket's store, does its
 * work, and closes the store so the process can end by itself.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { listBuckets } from '../buckets.ts';
import { isStatus, toKVError } from '../engine/api-errors.ts';
import { withRetry } from '../engine/retry-policy.ts';
import { ForeignObjectError, KVError, NamespaceNotFoundError, type CorruptEntryError } from '../errors.ts';
import { isShardCount, MAX_SHARDS, MIN_SHARDS } from '../codec/shard-hash.ts';
import type { KubeApi } from '../kube/port.ts';
import { createKV } from '../kv.ts';
import type { KV, KVPutEntry, KVValue, RetryOptions } from '../types.ts';
import { base64, formatBytes, formatData, formatPercent, formatTime, parseDuration, printable, table, UsageError, utf8OrUndefined } from './format.ts';
import { Progress, readAll, write, type CliIo } from './io.ts';
import type { CommandName, OutputFormat, ParsedOptions } from './program.ts';

/** Codes of the CLI's own failures (besides core's KVError codes). */
export type CliErrorCode = 'KEY_NOT_FOUND' | 'BUCKET_NOT_FOUND' | 'FAILED';

/** A failure the CLI reports as is (exit code 1), e.g. a missing key. */
export class CliError extends Error {
  override name = 'CliError';
  /** A second line telling what to do, if any. */
  readonly hint: string | undefined;
  /** Stable code, printed under -o json|yaml. */
  readonly code: CliErrorCode;
  constructor(message: string, hint?: string, code: CliErrorCode = 'FAILED') {
    super(message);
    this.hint = hint;
    this.code = code;
  }
}

/** A KVError with a CLI hint (e.g. which --app to pass). */
export class HintedError extends Error {
  override name = 'HintedError';
  readonly error: KVError;
  readonly hint: string;
  constructor(error: KVError, hint: string) {
    super(error.message);
    this.error = error;
    this.hint = hint;
  }
}

/** Everything a command needs. */
export interface CommandContext {
  io: CliIo;
  args: string[];
  options: ParsedOptions;
  api: KubeApi;
  namespace: string;
  /** How long to retry an unreachable or failing API server before giving up (--timeout). */
  retry: RetryOptions;
  /** Starts listening for SIGINT and SIGTERM; resolves with the first one that arrives. */
  untilStopped: () => Promise<string>;
  /** Whether a namespace exists (undefined: cannot tell); asked when a bucket is not found. */
  namespaceExists: (namespace: string) => Promise<boolean | undefined>;
}

/** Size of one import batch (one atomic patch), estimated from keys and values before compression. */
export const IMPORT_BATCH_BYTES = 200 * 1024;
/** Per-entry overhead assumed when batching (envelope header, JSON). */
const ENTRY_OVERHEAD_BYTES = 32;

const appOf = (ctx: CommandContext): string => ctx.options.app ?? 'default';

function quoteKey(key: string): string {
  return JSON.stringify(key);
}

/** The value of --shards: an integer from 1 to 256. */
function parseShards(text: string): number {
  const shards = Number(text);
  if (!/^\d+$/.test(text) || !isShardCount(shards)) {
    throw new UsageError(`--shards needs a whole number from ${MIN_SHARDS} to ${MAX_SHARDS}, got ${JSON.stringify(text)}`);
  }
  return shards;
}

function where(ctx: CommandContext, bucket: string): string {
  return `bucket "${bucket}" in namespace "${ctx.namespace}"`;
}

/** Opens the bucket's store, runs `fn`, closes the store; adds an --app hint to a foreign-object refusal. */
async function withKV<T>(ctx: CommandContext, bucket: string, fn: (kv: KV) => Promise<T>, onError?: (error: unknown) => void): Promise<T> {
  const warned = new Set<string>();
  const kv = createKV({
    bucket,
    ...(ctx.options.shards !== undefined ? { shards: parseShards(ctx.options.shards) } : {}),
    app: appOf(ctx),
    namespace: ctx.namespace,
    api: ctx.api,
    retry: ctx.retry,
    // One-shot commands read with a GET; `watch` starts its own list+watch.
    cache: false,
    onCorruptEntry: (error: CorruptEntryError) => {
      if (warned.has(error.key)) return;
      warned.add(error.key);
      ctx.io.stderr.write(`k8s-kv: warning: ${error.message}\n`);
    },
    ...(onError ? { onError } : {}),
  });
  try {
    return await fn(kv);
  } catch (error) {
    if (error instanceof ForeignObjectError && error.ownerApp) {
      throw new HintedError(error, `bucket "${bucket}" belongs to app "${error.ownerApp}": pass --app ${error.ownerApp}`);
    }
    throw error;
  } finally {
    await kv.close();
  }
}

/** True when the bucket's object exists (whoever owns it). */
async function bucketExists(ctx: CommandContext, bucket: string): Promise<boolean> {
  try {
    await withRetry(() => ctx.api.get({ kind: 'ConfigMap', namespace: ctx.namespace, name: bucket }), ctx.retry);
    return true;
  } catch (error) {
    if (isStatus(error, 404)) return false;
    throw toKVError(error, { verb: 'get', kind: 'ConfigMap', namespace: ctx.namespace });
  }
}

/**
 * Throws when the bucket does not exist: NamespaceNotFoundError when its
 * namespace does not exist either, else a BUCKET_NOT_FOUND CliError. Called
 * when a read found nothing, to tell a missing bucket from an empty one.
 */
async function requireBucket(ctx: CommandContext, bucket: string): Promise<void> {
  if (await bucketExists(ctx, bucket)) return;
  if ((await ctx.namespaceExists(ctx.namespace)) === false) {
    throw new HintedError(new NamespaceNotFoundError(ctx.namespace), 'pass the namespace with -n NAMESPACE');
  }
  throw new CliError(`${where(ctx, bucket)} does not exist`, 'list the buckets with "k8s-kv buckets" (-A for every namespace)', 'BUCKET_NOT_FOUND');
}

/** The -o format asked for, if any. */
function formatOf(ctx: CommandContext): OutputFormat | undefined {
  return ctx.options.output;
}

/** Prints `value` as -o json|yaml asks. */
async function printData(ctx: CommandContext, value: unknown): Promise<void> {
  await write(ctx.io.stdout, formatData(value, formatOf(ctx) ?? 'json'));
}

function progressEnabled(ctx: CommandContext): boolean {
  return ctx.options.progress === true || ctx.io.stderr.isTTY === true;
}

function requireYes(ctx: CommandContext, command: CommandName, what: string): void {
  if (!ctx.options.yes) throw new UsageError(`"${command}" ${what}; add --yes to confirm`, command);
}

async function buckets(ctx: CommandContext): Promise<void> {
  const all = ctx.options.allNamespaces === true;
  const list = await listBuckets({
    api: ctx.api,
    retry: ctx.retry,
    ...(all ? { allNamespaces: true } : { namespace: ctx.namespace }),
    ...(ctx.options.app !== undefined ? { app: ctx.options.app } : {}),
  });
  if (formatOf(ctx)) {
    await printData(
      ctx,
      list.map((b) => ({
        ...b,
        percent: Number(((b.bytes / b.limitBytes) * 100).toFixed(2)),
        createdAt: b.createdAt?.toISOString() ?? null,
        app: b.app ?? null,
      })),
    );
    return;
  }
  if (list.length === 0) {
    ctx.io.stderr.write(
      `No k8s-kv buckets ${all ? 'in any namespace' : `in namespace "${ctx.namespace}"`}${ctx.options.app !== undefined ? ` for app "${ctx.options.app}"` : ''}.\n`,
    );
    return;
  }
  const rows = list.map((b) => [
    ...(all ? [b.namespace] : []),
    b.name,
    b.app ?? '-',
    String(b.keys),
    String(b.expired),
    String(b.corrupt),
    `${formatBytes(b.bytes)} / ${formatBytes(b.limitBytes)}`,
    formatPercent(b.bytes, b.limitBytes),
    b.unsupportedFormat === undefined ? b.layout : `format ${b.unsupportedFormat}`,
    String(b.shards),
    formatTime(b.createdAt),
  ]);
  const header = [...(all ? ['NAMESPACE'] : []), 'NAME', 'APP', 'KEYS', 'EXPIRED', 'CORRUPT', 'BYTES', 'USED', 'LAYOUT', 'OBJECTS', 'CREATED'];
  await write(ctx.io.stdout, table(header, rows));
}

async function get(ctx: CommandContext): Promise<void> {
  const [bucket, key] = ctx.args as [string, string];
  await withKV(ctx, bucket, async (kv) => {
    const entry = await kv.getEntry(key);
    if (!entry) {
      await requireBucket(ctx, bucket);
      throw new CliError(`key ${quoteKey(key)} not found in ${where(ctx, bucket)}`, undefined, 'KEY_NOT_FOUND');
    }
    if (formatOf(ctx)) {
      await printData(ctx, {
        key: entry.key,
        value: entry.text ? Buffer.from(entry.value).toString('utf8') : base64(entry.value),
        text: entry.text,
        modifiedAt: entry.modifiedAt.toISOString(),
        expiresAt: entry.expiresAt?.toISOString() ?? null,
        size: entry.size,
      });
    } else {
      await write(ctx.io.stdout, entry.value);
      // On a terminal, end text with a newline so the prompt starts on its own line.
      if (ctx.io.stdout.isTTY && entry.text && entry.value.at(-1) !== 0x0a) await write(ctx.io.stdout, '\n');
    }
  });
}

async function readValue(ctx: CommandContext): Promise<KVValue> {
  const value = ctx.args[2];
  const file = ctx.options.file;
  if (file !== undefined && value !== undefined) throw new UsageError('give the value either as VALUE or with --file, not both', 'put');
  let bytes: Buffer;
  if (file !== undefined) {
    try {
      bytes = await readFile(file);
    } catch (error) {
      throw new CliError(`cannot read --file ${JSON.stringify(file)}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  } else if (value === undefined || value === '-') {
    if (ctx.io.stdin.isTTY) ctx.io.stderr.write('Reading the value from stdin; end it with Ctrl-D.\n');
    bytes = await readAll(ctx.io.stdin);
  } else {
    if (ctx.options.binary) throw new UsageError('--binary applies to a value from --file or stdin', 'put');
    return value;
  }
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (ctx.options.binary) return view;
  return utf8OrUndefined(view) ?? view;
}

async function put(ctx: CommandContext): Promise<void> {
  const [bucket, key] = ctx.args as [string, string];
  const ttl = ctx.options.ttl === undefined ? undefined : parseDuration(ctx.options.ttl, '--ttl', 'put');
  const value = await readValue(ctx);
  await withKV(ctx, bucket, async (kv) => {
    await kv.put(key, value, ttl === undefined ? undefined : { ttl });
    if (formatOf(ctx)) {
      const entry = await kv.getEntry(key);
      await printData(ctx, {
        key,
        text: typeof value === 'string',
        size: entry?.size ?? null,
        expiresAt: entry?.expiresAt?.toISOString() ?? null,
      });
    }
  });
}

async function del(ctx: CommandContext): Promise<void> {
  const [bucket, ...keys] = ctx.args as [string, ...string[]];
  await withKV(ctx, bucket, async (kv) => {
    const deleted = await kv.deleteMany(keys);
    if (formatOf(ctx))
      await printData(
        ctx,
        keys.map((key, i) => ({ key, deleted: deleted[i] })),
      );
    const seen = new Set<string>();
    const missing = keys.filter((key, i) => {
      const first = !seen.has(key);
      seen.add(key);
      return first && !deleted[i];
    });
    if (missing.length > 0 && missing.length === new Set(keys).size) await requireBucket(ctx, bucket);
    if (missing.length === 1) throw new CliError(`key ${quoteKey(missing[0]!)} not found in ${where(ctx, bucket)}`, undefined, 'KEY_NOT_FOUND');
    if (missing.length > 1)
      throw new CliError(`${missing.length} keys not found in ${where(ctx, bucket)}: ${missing.map(quoteKey).join(', ')}`, undefined, 'KEY_NOT_FOUND');
  });
}

async function keys(ctx: CommandContext): Promise<void> {
  const [bucket, prefix = ''] = ctx.args as [string, string?];
  await withKV(ctx, bucket, async (kv) => {
    const list = await kv.keys(prefix);
    if (list.length === 0) await requireBucket(ctx, bucket);
    if (formatOf(ctx)) return printData(ctx, list);
    if (list.length > 0) await write(ctx.io.stdout, list.map(printable).join('\n') + '\n');
  });
}

function displayValue(value: Uint8Array, text: boolean): string {
  if (text) return printable(Buffer.from(value).toString('utf8'));
  return `base64:${base64(value)}`;
}

async function list(ctx: CommandContext): Promise<void> {
  const [bucket, prefix = ''] = ctx.args as [string, string?];
  const withValues = ctx.options.values === true;
  await withKV(ctx, bucket, async (kv) => {
    const entries = await kv.entries(prefix);
    if (entries.length === 0) await requireBucket(ctx, bucket);
    if (formatOf(ctx)) {
      return printData(
        ctx,
        entries.map((e) => ({
          key: e.key,
          size: e.size,
          text: e.text,
          modifiedAt: e.modifiedAt.toISOString(),
          expiresAt: e.expiresAt?.toISOString() ?? null,
          ...(withValues ? { value: e.text ? Buffer.from(e.value).toString('utf8') : base64(e.value) } : {}),
        })),
      );
    }
    if (entries.length === 0) {
      ctx.io.stderr.write(`No keys${prefix ? ` starting with ${quoteKey(prefix)}` : ''} in ${where(ctx, bucket)}.\n`);
      return;
    }
    const header = ['KEY', 'SIZE', 'MODIFIED', 'EXPIRES', ...(withValues ? ['VALUE'] : [])];
    const rows = entries.map((e) => [
      printable(e.key),
      formatBytes(e.size),
      formatTime(e.modifiedAt),
      formatTime(e.expiresAt),
      ...(withValues ? [displayValue(e.value, e.text)] : []),
    ]);
    await write(ctx.io.stdout, table(header, rows));
  });
}

async function stats(ctx: CommandContext): Promise<void> {
  const [bucket] = ctx.args as [string];
  await withKV(ctx, bucket, async (kv) => {
    const s = await kv.stats();
    if (s.keys + s.expired + s.corrupt === 0) await requireBucket(ctx, bucket);
    if (formatOf(ctx)) {
      return printData(ctx, { bucket, namespace: ctx.namespace, ...s, percent: Number(((s.bytes / s.limitBytes) * 100).toFixed(2)) });
    }
    const rows = [
      ['bucket', bucket],
      ['namespace', ctx.namespace],
      ['keys', String(s.keys)],
      ['expired', String(s.expired)],
      ['corrupt', String(s.corrupt)],
      ['bytes', `${s.bytes} of ${s.limitBytes} (${formatBytes(s.bytes)} / ${formatBytes(s.limitBytes)}, ${formatPercent(s.bytes, s.limitBytes)})`],
      ...(s.layout === 'sharded' ? [['shards', `${s.shards} ConfigMaps (${bucket}.shard-0 .. ${bucket}.shard-${s.shards - 1}), 1 MiB each`]] : []),
      ...(s.layout === 'elastic' ? [['parts', `${s.shards} ConfigMaps (${bucket}.p<depth>-<suffix>), split as the bucket grows`]] : []),
    ];
    await write(ctx.io.stdout, rows.map(([k, v]) => `${(k + ':').padEnd(11)}${v}`).join('\n') + '\n');
  });
}

async function clear(ctx: CommandContext): Promise<void> {
  const [bucket, prefix = ''] = ctx.args as [string, string?];
  requireYes(
    ctx,
    'clear',
    prefix ? `deletes every key starting with ${quoteKey(prefix)} in ${where(ctx, bucket)}` : `deletes every key of ${where(ctx, bucket)}`,
  );
  await withKV(ctx, bucket, async (kv) => {
    const count = await kv.clear(prefix);
    if (count === 0) await requireBucket(ctx, bucket);
    if (formatOf(ctx)) return printData(ctx, { bucket, namespace: ctx.namespace, prefix, deleted: count });
    await write(ctx.io.stdout, `deleted ${count} key${count === 1 ? '' : 's'} from ${where(ctx, bucket)}\n`);
  });
}

async function exportBucket(ctx: CommandContext): Promise<void> {
  const [bucket] = ctx.args as [string];
  const file = ctx.options.out;
  await withKV(ctx, bucket, async (kv) => {
    const entries = await kv.entries();
    if (entries.length === 0) await requireBucket(ctx, bucket);
    let out: Writable = ctx.io.stdout;
    if (file !== undefined) {
      out = createWriteStream(file);
      await new Promise<void>((resolve, reject) => {
        out.once('open', () => resolve());
        out.once('error', (error: NodeJS.ErrnoException) => reject(new CliError(`cannot write --out ${JSON.stringify(file)}: ${error.code ?? error.message}`)));
      });
    }
    const progress = new Progress(ctx.io.stderr, progressEnabled(ctx), 'exported', entries.length);
    let done = 0;
    for (const e of entries) {
      const line = { key: e.key, value: base64(e.value), text: e.text, expiresAt: e.expiresAt?.toISOString() ?? null };
      await write(out, JSON.stringify(line) + '\n');
      done += 1;
      progress.update(done);
    }
    if (file !== undefined) {
      out.end();
      await finished(out);
    }
    progress.update(done, true);
    progress.finish(`exported ${done} key${done === 1 ? '' : 's'} from ${where(ctx, bucket)}${file !== undefined ? ` to ${file}` : ''}`);
  });
}

interface ImportLine {
  key: string;
  value: KVValue;
  expiresAt: number | undefined;
  /** Bytes counted against the batch budget. */
  weight: number;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Parses and checks a whole export file. */
function parseImport(text: string, source: string): ImportLine[] {
  const lines: ImportLine[] = [];
  const rows = text.split('\n');
  for (let i = 0; i < rows.length; i++) {
    const raw = rows[i]!.trim();
    if (raw === '') continue;
    const bad = (why: string): never => {
      throw new CliError(
        `${source} line ${i + 1}: ${why}; nothing was imported`,
        'Each line must be {"key": string, "value": base64, "text": boolean, "expiresAt": ISO time or null}, as "k8s-kv export" writes.',
      );
    };
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      bad('not valid JSON');
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) bad('not a JSON object');
    const record = parsed as Record<string, unknown>;
    if (typeof record.key !== 'string') bad('"key" must be a string');
    if (typeof record.value !== 'string' || !BASE64.test(record.value)) bad('"value" must be a base64 string');
    if (record.text !== undefined && typeof record.text !== 'boolean') bad('"text" must be true or false');
    let expiresAt: number | undefined;
    if (record.expiresAt !== undefined && record.expiresAt !== null) {
      expiresAt = typeof record.expiresAt === 'string' ? Date.parse(record.expiresAt) : Number.NaN;
      if (Number.isNaN(expiresAt)) bad('"expiresAt" must be an ISO time or null');
    }
    const bytes = Buffer.from(record.value as string, 'base64');
    let value: KVValue = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (record.text === true) {
      const decoded = utf8OrUndefined(value);
      if (decoded === undefined) bad('"text" is true but the value is not valid UTF-8');
      value = decoded!;
    }
    const key = record.key as string;
    lines.push({ key, value, expiresAt, weight: Buffer.byteLength(key) + bytes.length + ENTRY_OVERHEAD_BYTES });
  }
  return lines;
}

async function importBucket(ctx: CommandContext): Promise<void> {
  const [bucket, file] = ctx.args as [string, string];
  let text: string;
  try {
    text = (file === '-' ? await readAll(ctx.io.stdin) : await readAll(createReadStream(file))).toString('utf8');
  } catch (error) {
    throw new CliError(`cannot read ${JSON.stringify(file)}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const source = file === '-' ? 'stdin' : JSON.stringify(file);
  const lines = parseImport(text, source);
  await withKV(ctx, bucket, async (kv) => {
    const now = Date.now();
    const live = lines.filter((l) => l.expiresAt === undefined || l.expiresAt > now);
    const skipped = lines.length - live.length;
    const batches: KVPutEntry[][] = [];
    let batch: KVPutEntry[] = [];
    let batchBytes = 0;
    for (const line of live) {
      if (batch.length > 0 && batchBytes + line.weight > IMPORT_BATCH_BYTES) {
        batches.push(batch);
        batch = [];
        batchBytes = 0;
      }
      batch.push({ key: line.key, value: line.value, ...(line.expiresAt !== undefined ? { ttl: Math.max(1, line.expiresAt - now) } : {}) });
      batchBytes += line.weight;
    }
    if (batch.length > 0) batches.push(batch);

    const progress = new Progress(ctx.io.stderr, progressEnabled(ctx), 'imported', live.length);
    let done = 0;
    for (const [index, entries] of batches.entries()) {
      try {
        await kv.putMany(entries);
      } catch (error) {
        progress.clear();
        if (error instanceof KVError) {
          const partial = `imported ${done} of ${live.length} keys (${index} of ${batches.length} batches) before this failure; re-running the import is safe`;
          throw new HintedError(error, partial);
        }
        throw error;
      }
      done += entries.length;
      progress.update(done, true);
    }
    const summary = {
      bucket,
      namespace: ctx.namespace,
      imported: done,
      skippedExpired: skipped,
      batches: batches.length,
    };
    progress.finish(
      `imported ${done} key${done === 1 ? '' : 's'} into ${where(ctx, bucket)} in ${batches.length} batch${batches.length === 1 ? '' : 'es'}` +
        (skipped > 0 ? ` (skipped ${skipped} expired)` : ''),
    );
    if (formatOf(ctx)) await printData(ctx, summary);
  });
}

async function watch(ctx: CommandContext): Promise<void> {
  const [bucket] = ctx.args as [string];
  // Listen before the watch starts, so a signal during start-up still ends it cleanly.
  const stopped = ctx.untilStopped();
  await withKV(
    ctx,
    bucket,
    async (kv) => {
      const format = formatOf(ctx);
      const unsubscribe = await kv.watch((event) => {
        const record = { type: event.type, key: event.key };
        ctx.io.stdout.write(
          format === 'json'
            ? JSON.stringify(record) + '\n'
            : format === 'yaml'
              ? `---\n${formatData(record, 'yaml')}`
              : `${event.type} ${printable(event.key)}\n`,
        );
      });
      ctx.io.stderr.write(`Watching ${where(ctx, bucket)}; stop with Ctrl-C.\n`);
      await stopped;
      unsubscribe();
    },
    (error) => {
      // The watch reconnects by itself; say why it dropped.
      ctx.io.stderr.write(`k8s-kv: warning: the watch was interrupted and is reconnecting: ${error instanceof Error ? error.message : String(error)}\n`);
    },
  );
}

async function teardown(ctx: CommandContext): Promise<void> {
  const [bucket] = ctx.args as [string];
  requireYes(ctx, 'teardown', `deletes ${where(ctx, bucket)} and every key in it`);
  await withKV(ctx, bucket, async (kv) => {
    if (!(await bucketExists(ctx, bucket))) throw new CliError(`${where(ctx, bucket)} does not exist; nothing was deleted`, undefined, 'BUCKET_NOT_FOUND');
    await kv.teardown();
    if (formatOf(ctx)) return printData(ctx, { bucket, namespace: ctx.namespace, deleted: true });
    await write(ctx.io.stdout, `deleted ${where(ctx, bucket)}\n`);
  });
}

/** The implementation of each command. */
export const RUN: Record<CommandName, (ctx: CommandContext) => Promise<void>> = {
  buckets,
  get,
  put,
  delete: del,
  keys,
  list,
  stats,
  clear,
  export: exportBucket,
  import: importBucket,
  watch,
  teardown,
};
