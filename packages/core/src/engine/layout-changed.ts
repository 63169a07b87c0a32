/**
 * The signal from an object's engine to the bucket's router (bucket.ts): the
 * object is not laid out as the engine assumed (a format-1 engine met a sharded
 * bucket's head, a shard engine met a shard of another layout). The router looks
 * at the bucket's head again and routes anew.
 */
export class LayoutChanged extends Error {}
