/**
 * The signal from an object's engine to the bucket's router (bucket.ts): the
 * object is not laid out as the engine assumed (a format-1 engine met a sharded
 * bucket's head, a shard engine met a shard of another layout). The router looks
 * at the bucket's head again and routes anew.
 */
export class LayoutChanged extends Error {}

/**
 * The object is sealed for a split (docs/FORMAT.md section 9.4): writes to it
 * fail until the split is over. The router finishes the split (or waits for the
 * process doing it) and routes again.
 */
export class SplitInProgress extends LayoutChanged {
  /** The sealed object. */
  readonly objectName: string;
  constructor(objectName: string) {
    super(`${objectName} is being split`);
    this.objectName = objectName;
  }
}

/**
 * A write routed again because it waited for a split this process ran (bucket.ts):
 * the split told the router the new layout at its switch; nothing else to learn.
 */
export class SplitWaited extends LayoutChanged {}
