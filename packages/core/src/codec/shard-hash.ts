/**
 * Which shard of a sharded bucket (format 2) holds a key. Pure.
 *
 * The shard index is `fmix32(fnv1a32(utf8(dataKey))) mod shards`: FNV-1a over
 * the UTF-8 bytes of the entry's data key (what the key codec stores), then
 * MurmurHash3's 32-bit finalizer so that every bit of the hash depends on
 * every input byte. docs/FORMAT.md section 8 has test vectors.
 */

/**
 * 32-bit FNV-1a of the data key's bytes, then the MurmurHash3 fmix32 finalizer.
 * Data keys are ASCII (the key codec guarantees it), so a character code is its byte.
 */
export function shardHash(dataKey: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < dataKey.length; i++) {
    h ^= dataKey.charCodeAt(i) & 0xff;
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The index (0 .. shards-1) of the shard that holds the entry stored under `dataKey`. */
export function shardIndex(dataKey: string, shards: number): number {
  return shardHash(dataKey) % shards;
}

/** Name of shard `index` of `bucket`: `<bucket>.shard-<index>`. */
export function shardName(bucket: string, index: number): string {
  return `${bucket}.shard-${index}`;
}

/** Smallest shard count: `shards: 1`, the default, keeps a bucket in one object (format 1). */
export const MIN_SHARDS = 1;
/** Largest shard count (256 shards hold up to 256 MiB, well within etcd's default 2 GiB quota). */
export const MAX_SHARDS = 256;

/** True for a shard count a bucket can have: an integer from {@link MIN_SHARDS} to {@link MAX_SHARDS}. */
export function isShardCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= MIN_SHARDS && value <= MAX_SHARDS;
}

/** Deepest part of an elastic bucket: a part of depth `d` holds the keys whose hash has `h mod 2^d` = its suffix. */
export const MAX_PART_DEPTH = 32;

/** The suffix of a hash at a depth: `hash mod 2^depth` (the range of part (depth, suffix)). */
export function hashSuffix(hash: number, depth: number): number {
  return depth >= 32 ? hash >>> 0 : (hash >>> 0) % 2 ** depth;
}

/** Name of part (depth, suffix) of an elastic bucket (format 3): `<bucket>.p<depth>-<suffix in hex>`. */
export function partName(bucket: string, depth: number, suffix: number): string {
  return `${bucket}.p${depth}-${suffix.toString(16)}`;
}
