/**
 * A decoded view of one bucket object: its entries by user key, the entries
 * that could not be decoded, and the bytes it holds. Pure.
 */
import { decodeEnvelope, decodeEnvelopeHeader, EnvelopeError, type EnvelopeHeader } from '../codec/envelope.ts';
import { decodeKey, decodeKeyFull, encodeKey } from '../codec/key-codec.ts';
import { CorruptEntryError } from '../errors.ts';
import { objectDataBytes } from '../kube/object-rules.ts';
import type { KubeObject, ObjectKind } from '../kube/port.ts';

/** The map of an object that holds k8s-kv entries. */
export function entryField(kind: ObjectKind): 'binaryData' | 'data' {
  return kind === 'Secret' ? 'data' : 'binaryData';
}

/** One stored entry, header decoded, value not yet inflated. */
export interface StoredEntry {
  /** The user's key. */
  key: string;
  /** The ConfigMap data key. */
  dataKey: string;
  /** The stored base64 text (what a JSON patch `test` compares). */
  b64: string;
  /** The envelope bytes. */
  envelope: Uint8Array;
  /** The decoded header. */
  header: EnvelopeHeader;
  /** The value (its checksum verified). */
  value: Uint8Array;
}

/** A decoded bucket object. */
export interface Snapshot {
  /** False when the object does not exist (yet). */
  exists: boolean;
  uid?: string | undefined;
  resourceVersion?: string | undefined;
  /** True when the entry map exists on the object (JSON patch `add` into it works). */
  hasEntryMap: boolean;
  /** Entries by user key, expired ones included. */
  entries: Map<string, StoredEntry>;
  /** The same entries by data key. */
  byDataKey: Map<string, StoredEntry>;
  /** Entries that could not be decoded. */
  corrupt: CorruptEntryError[];
  /** Data keys of corrupt entries, to their error. */
  corruptByDataKey: Map<string, CorruptEntryError>;
  /** Data keys of corrupt `binaryData` entries, to their stored text (so that the next decode reuses the error). */
  corruptText?: Map<string, string> | undefined;
  /** Keys of a ConfigMap's `data` map: k8s-kv never writes there, so each is a corrupt entry, removed from `data`. */
  strays?: Set<string> | undefined;
  /** Bytes the API server counts against the 1 MiB limit. */
  totalBytes: number;
  /** The object's annotations (its format, and a sharded bucket's layout). */
  annotations: Record<string, string>;
  /** A view of a bucket of several objects: the snapshot of each (their entries merged above). */
  parts?: Snapshot[] | undefined;
  /** The name of the object this is a snapshot of (set by its store). */
  object?: string | undefined;
}

/** The snapshot of a bucket that does not exist. */
export function emptySnapshot(): Snapshot {
  return {
    exists: false,
    hasEntryMap: false,
    entries: new Map(),
    byDataKey: new Map(),
    corrupt: [],
    corruptByDataKey: new Map(),
    totalBytes: 0,
    annotations: {},
  };
}

/**
 * Decodes one stored entry, or returns why it is corrupt. The whole envelope is
 * decoded and its checksum verified here, once per stored text, so that every
 * read call gives the same answer about a damaged entry (not only `get`).
 */
export function parseEntry(dataKey: string, b64: string): StoredEntry | CorruptEntryError {
  const decodedKey = decodeKey(dataKey);
  if (decodedKey.kind === 'invalid') return new CorruptEntryError(dataKey, `data key is not a k8s-kv key: ${decodedKey.reason}`);
  const envelope = new Uint8Array(Buffer.from(b64, 'base64'));
  let header: EnvelopeHeader;
  try {
    header = decodeEnvelopeHeader(envelope);
  } catch (error) {
    const key = decodedKey.kind === 'plain' ? decodedKey.key : dataKey;
    return new CorruptEntryError(key, error instanceof EnvelopeError ? error.message : String(error));
  }
  let key: string;
  if (decodedKey.kind === 'plain') {
    key = decodedKey.key;
  } else {
    const full = header.fullKey === undefined ? undefined : decodeKeyFull(header.fullKey);
    if (full?.kind !== 'plain' || encodeKey(full.key).dataKey !== dataKey) {
      return new CorruptEntryError(dataKey, 'hashed key does not match the key stored in the entry');
    }
    key = full.key;
  }
  let value: Uint8Array;
  try {
    value = decodeEnvelope(envelope).value;
  } catch (error) {
    return new CorruptEntryError(key, error instanceof EnvelopeError ? error.message : String(error));
  }
  return { key, dataKey, b64, envelope, header, value };
}

/**
 * Decodes a bucket object into a snapshot. Entries whose stored text is the same
 * as in `previous` are reused as they are (no second decode of unchanged keys).
 */
export function snapshotOf(kind: ObjectKind, object: KubeObject, previous?: Snapshot): Snapshot {
  const snapshot: Snapshot = {
    exists: true,
    uid: object.metadata.uid,
    resourceVersion: object.metadata.resourceVersion,
    hasEntryMap: false,
    entries: new Map(),
    byDataKey: new Map(),
    corrupt: [],
    corruptByDataKey: new Map(),
    totalBytes: objectDataBytes(kind, object),
    annotations: object.metadata.annotations ?? {},
  };
  const field = entryField(kind);
  const map = object[field];
  snapshot.hasEntryMap = map !== undefined && map !== null;
  for (const [dataKey, b64] of Object.entries(map ?? {})) {
    const known = previous?.byDataKey.get(dataKey);
    // Unchanged entries are not decoded again, damaged ones included (an error is costly to build).
    const knownCorrupt = previous?.corruptText?.get(dataKey) === b64 ? previous.corruptByDataKey.get(dataKey) : undefined;
    const parsed = known && known.b64 === b64 ? known : (knownCorrupt ?? parseEntry(dataKey, b64));
    if (parsed instanceof CorruptEntryError) {
      snapshot.corrupt.push(parsed);
      snapshot.corruptByDataKey.set(dataKey, parsed);
      // biome-ignore lint/suspicious/noAssignInExpressions: the map is created with its first entry
      (snapshot.corruptText ??= new Map()).set(dataKey, b64);
    } else {
      snapshot.entries.set(parsed.key, parsed);
      snapshot.byDataKey.set(dataKey, parsed);
    }
  }
  if (kind === 'ConfigMap') {
    // k8s-kv never writes `data`; anything there was added by hand.
    const strays = Object.keys(object.data ?? {});
    if (strays.length > 0) snapshot.strays = new Set(strays);
    for (const dataKey of strays) {
      const error = new CorruptEntryError(dataKey, 'plain-text "data" entry was not written by k8s-kv');
      snapshot.corrupt.push(error);
      snapshot.corruptByDataKey.set(dataKey, error);
    }
  }
  return snapshot;
}

/**
 * One view of a sharded bucket: the entries of every shard together (a key
 * lives in exactly one shard), their bytes summed, and the shards kept in `parts`.
 */
export function mergeSnapshots(parts: Snapshot[]): Snapshot {
  const merged: Snapshot = { ...emptySnapshot(), parts };
  for (const part of parts) {
    merged.exists ||= part.exists;
    for (const [key, entry] of part.entries) merged.entries.set(key, entry);
    for (const [dataKey, entry] of part.byDataKey) merged.byDataKey.set(dataKey, entry);
    merged.corrupt.push(...part.corrupt);
    for (const [dataKey, error] of part.corruptByDataKey) merged.corruptByDataKey.set(dataKey, error);
    if (part.strays) merged.strays = new Set([...(merged.strays ?? []), ...part.strays]);
    merged.totalBytes += part.totalBytes;
  }
  return merged;
}

/** True when the entry has expired at `now`. */
export function isExpired(entry: StoredEntry, now: number): boolean {
  return entry.header.expiresAt !== undefined && entry.header.expiresAt <= now;
}

/** How many entries of a snapshot have expired at `now` (they still take space until removed). */
export function countExpired(snapshot: Snapshot, now: number): number {
  let expired = 0;
  for (const entry of snapshot.entries.values()) if (isExpired(entry, now)) expired++;
  return expired;
}

/** An entry's value: a copy, so that callers may change what they get without changing the cached value. */
export function entryValue(entry: StoredEntry): Uint8Array {
  return entry.value.slice();
}

/** Decoded size of the entry as the API server counts it. */
export function entrySize(entry: StoredEntry): number {
  return entry.envelope.length;
}
