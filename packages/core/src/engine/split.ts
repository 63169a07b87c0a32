/**
 * Splitting one object of an elastic bucket in two: the protocol of
 * docs/FORMAT.md section 9.4 (seal, copy, switch, activate; roll back when the
 * copy is refused). Any process may run it for any object, also one that another
 * process began to split and left sealed: every step is idempotent, and two
 * processes running it at once produce the same children.
 */
import { hashSuffix, MAX_PART_DEPTH, partName, shardHash } from '../codec/shard-hash.ts';
import { KVError } from '../errors.ts';
import { objectDataBytes } from '../kube/object-rules.ts';
import { KubeApiError, type JsonPatchOp, type KubeApi, type KubeObject, type ObjectRef } from '../kube/port.ts';
import type { RetryOptions } from '../types.ts';
import { ANNOTATION_FORMAT, ANNOTATION_SEALED, ANNOTATION_SPLIT_FROM, ELASTIC_FORMAT_VERSION } from './labels.ts';
import { bucketLabels, checkOwnership, isSealed, ownershipTests, parseRole, roleAnnotations, splitSource, type BucketIdentity } from './ownership.ts';
import { callApi } from './retry-policy.ts';
import { entryField } from './snapshot.ts';
import { rvNumber } from './watch-loop.ts';

/**
 * The split threshold: an object whose entries pass this many bytes is split.
 * Chosen from the API server's cost of a patch against the size of the object
 * (docs/PERFORMANCE.md: a one-key JSON patch of a 12 KiB object costs 1.12x what
 * it costs on 5 KiB, 1.25x at 16 KiB, 1.46x at 24 KiB, 2.7x at 64 KiB) and from
 * puts measured against the threshold (8, 12, 16 and 24 KiB): parts hold 6 to 12
 * KiB, so a write costs about what it costs on a small bucket, and several
 * processes writing one bucket meet each other on fewer of its objects. Smaller
 * parts gained little more, for more objects.
 */
export const SPLIT_BYTES = 12 * 1024;

/**
 * How long after its own seal was answered a splitter may create the children without
 * reading the object again: a client that meets a seal waits at least 25 ms before it
 * helps (bucket.ts, SEAL_PATIENCE_MS), then needs several requests to switch the object,
 * and the children to split again, before a create could bring one back (section 9.2
 * makes such a copy harmless anyway).
 */
const JUST_SEALED_MS = 10;

/** The steps of a split, in order (a test hook may stop a split before any of them). */
export const SPLIT_STEPS = ['seal', 'copy', 'switch', 'activate'] as const;
/** One step of a split. */
export type SplitStep = (typeof SPLIT_STEPS)[number];

/** What a split needs to know. */
export interface SplitContext extends BucketIdentity {
  api: KubeApi;
  retry?: RetryOptions | undefined;
  now: () => number;
  /** Test hook: called before each step; what it throws stops the split there, as a crash would. */
  beforeStep?: ((step: SplitStep, object: string) => void | Promise<void>) | undefined;
  /**
   * Told (and awaited) when this call is about to seal the object, when the object is sealed
   * (from then on a write to it waits for the split) and when it is switched (the children,
   * given, hold its keys from then on; their activation is tidying).
   */
  progress?: ((event: SplitProgress, children?: KubeObject[]) => void | Promise<void>) | undefined;
}

/** What a split tells its process as it goes (SplitContext.progress). */
export type SplitProgress = 'sealing' | 'sealed' | 'switched';

/** The object to split: the format-1 head (the root, depth 0) or a part. */
export interface SplitTarget {
  name: string;
  depth: number;
  suffix: number;
}

/**
 * How a split ended: `split` (the children are live), `gone` (the object was split
 * already, or is no longer what it was), `changed` (its seal was rolled back by
 * someone else, or it changed), `rolled-back` (this call could not copy it and
 * unsealed it; `cause` says why).
 */
export type SplitOutcome =
  /** The children are live; each with the bytes it was created with (a child past the threshold is split in turn). */
  | { outcome: 'split'; children: Array<SplitTarget & { bytes: number }> }
  | { outcome: 'gone' | 'changed' }
  | { outcome: 'rolled-back'; cause: unknown }
  /**
   * Not split: not past `unlessUnder` bytes (an estimate was high), or splitting would not
   * make it smaller (every entry hashes to one side: one large value, or the deepest
   * part). `bytes` is its exact size.
   */
  | { outcome: 'kept'; bytes: number };

/** JSON pointer of an annotation. */
function annotationPath(key: string): string {
  return `/metadata/annotations/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

/**
 * Runs the split of `target` as far as it can go. `unlessUnder`: leave an object that
 * is not sealed and holds no more than this many bytes alone (a writer that only sees
 * metadata in its answers estimates an object's size from what it wrote).
 */
export async function splitObject(ctx: SplitContext, target: SplitTarget, unlessUnder?: number): Promise<SplitOutcome> {
  const field = entryField(ctx.kind);
  const ref: ObjectRef = { kind: ctx.kind, namespace: ctx.namespace, name: target.name };
  const call = <T>(verb: string, fn: () => Promise<T>, expected: (refusal: KubeApiError) => boolean): Promise<T | KubeApiError> =>
    callApi({ verb, kind: ctx.kind, namespace: ctx.namespace }, ctx.retry, fn, expected);
  const step = async (name: SplitStep): Promise<void> => {
    await ctx.beforeStep?.(name, target.name);
  };
  const clearManagedFields: JsonPatchOp = { op: 'add', path: '/metadata/managedFields', value: [{}] };

  // 1. Seal (or find it sealed by another process, which this call then helps finish).
  let object = await call(
    'get',
    () => ctx.api.get(ref),
    (r) => r.status === 404,
  );
  if (object instanceof KubeApiError) return { outcome: 'gone' };
  const role = checkOwnership(object, ctx);
  const isRoot = target.depth === 0;
  if (isRoot ? role.role !== 'bucket' : role.role !== 'part' || role.depth !== target.depth || role.suffix !== target.suffix) return { outcome: 'gone' };
  if (!isSealed(object.metadata.annotations)) {
    const bytes = objectDataBytes(ctx.kind, object);
    if (unlessUnder !== undefined && bytes <= unlessUnder) return { outcome: 'kept', bytes };
    // Nothing to gain when every entry would go to one child (one large value; keys whose hashes agree in every bit).
    const keys = [...Object.keys(object[field] ?? {}), ...(ctx.kind === 'ConfigMap' ? Object.keys(object.data ?? {}) : [])];
    const sides = new Set(keys.map((dataKey) => hashSuffix(shardHash(dataKey), target.depth + 1)));
    if (target.depth + 1 > MAX_PART_DEPTH || sides.size < 2) return { outcome: 'kept', bytes };
  }
  /** When this call's own seal was answered (undefined: another client sealed P). */
  let sealedAt: number | undefined;
  if (!isSealed(object.metadata.annotations)) {
    await step('seal');
    await ctx.progress?.('sealing');
    const sealOps: JsonPatchOp[] = [
      ...ownershipTests(ctx, object.metadata.uid, object.metadata.annotations),
      { op: 'add', path: annotationPath(ANNOTATION_SEALED), value: new Date(ctx.now()).toISOString() },
      clearManagedFields,
    ];
    const sealed = await call(
      'patch',
      () => ctx.api.jsonPatch(ref, sealOps),
      (r) => r.status === 404 || r.status === 422,
    );
    if (sealed instanceof KubeApiError) {
      // Sealed by someone else meanwhile (help them), or no longer this object.
      const now = await call(
        'get',
        () => ctx.api.get(ref),
        (r) => r.status === 404,
      );
      if (now instanceof KubeApiError || !isSealed(now.metadata.annotations) || now.metadata.uid !== object.metadata.uid)
        return { outcome: sealed.status === 404 ? 'gone' : 'changed' };
      object = now;
    } else {
      object = sealed;
      sealedAt = performance.now();
    }
  }
  await ctx.progress?.('sealed');
  const uid = object.metadata.uid!;
  const rv = object.metadata.resourceVersion!;
  const seal = object.metadata.annotations?.[ANNOTATION_SEALED];
  const headUid = role.role === 'part' ? role.headUid : uid;
  const splitFrom = `${uid}@${rv}`;

  // 2. Copy P's entries (and entries added by hand to a ConfigMap's `data`) into the two children, pending.
  await step('copy');
  const depth = target.depth + 1;
  const suffixes = [target.suffix, target.suffix + 2 ** target.depth];
  const halves = suffixes.map(() => ({ entries: {} as Record<string, string>, data: {} as Record<string, string> }));
  const half = (dataKey: string): number => (hashSuffix(shardHash(dataKey), depth) === suffixes[0] ? 0 : 1);
  for (const [dataKey, value] of Object.entries(object[field] ?? {})) halves[half(dataKey)]!.entries[dataKey] = value;
  if (ctx.kind === 'ConfigMap') for (const [dataKey, value] of Object.entries(object.data ?? {})) halves[half(dataKey)]!.data[dataKey] = value;
  // A child is created only while P is still sealed at `rv`: once P is switched, its children may have split
  // in turn, and a child created again would bring their range back as it was at `rv` (section 9.2 makes
  // readers ignore such a copy; this keeps the copies from being made but for a create under way at the switch).
  const stillSealed = async (): Promise<boolean> => {
    const now = await call(
      'get',
      () => ctx.api.get(ref),
      (r) => r.status === 404,
    );
    return !(now instanceof KubeApiError) && now.metadata.uid === uid && now.metadata.resourceVersion === rv;
  };
  const children: KubeObject[] = [];
  try {
    // Both children at once, after one look at P (a create that has to be tried again looks again). A seal this
    // call made a moment ago is that look: other clients wait longer than that before they help (section 9.5).
    const justSealed = sealedAt !== undefined && performance.now() - sealedAt < JUST_SEALED_MS;
    if (!justSealed && !(await stillSealed())) return { outcome: 'changed' };
    const made = await Promise.allSettled(
      suffixes.map((suffix, i) =>
        ensureChild(ctx, call, { name: partName(ctx.bucket, depth, suffix), depth, suffix, headUid, splitFrom, rv, stillSealed }, halves[i]!),
      ),
    );
    const failures = made.flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
    // A refusal ends the split (rolled back below), whatever the other child met.
    if (failures.length > 0) throw failures.find(isRefusal) ?? failures[0];
    for (const result of made) {
      const child = result.status === 'fulfilled' ? result.value : undefined;
      if (!child) return { outcome: 'changed' };
      children.push(child);
    }
  } catch (error) {
    if (!isRefusal(error)) throw error;
    // Refused (a quota, RBAC, a foreign object in the way): unseal P, which also makes every switch at `rv` impossible.
    const unseal: JsonPatchOp[] = [
      { op: 'test', path: '/metadata/uid', value: uid },
      { op: 'test', path: annotationPath(ANNOTATION_SEALED), value: seal ?? null },
      { op: 'remove', path: annotationPath(ANNOTATION_SEALED) },
      clearManagedFields,
    ];
    await call(
      'patch',
      () => ctx.api.jsonPatch(ref, unseal),
      (r) => r.status === 404 || r.status === 422,
    );
    return { outcome: 'rolled-back', cause: error };
  }

  // 3. Switch: P at `rv` goes, in one atomic step; the children are live from then on.
  await step('switch');
  const switched = isRoot
    ? await call(
        'patch',
        () =>
          ctx.api.mergePatch(ref, {
            metadata: {
              uid,
              resourceVersion: rv,
              annotations: { [ANNOTATION_FORMAT]: ELASTIC_FORMAT_VERSION, [ANNOTATION_SEALED]: null },
              managedFields: [{}],
            },
            [field]: null,
            ...(ctx.kind === 'ConfigMap' ? { data: null } : {}),
          }),
        (r) => r.status === 404 || r.status === 409,
      )
    : await call(
        'delete',
        () => ctx.api.delete(ref, { uid, resourceVersion: rv }),
        (r) => r.status === 404 || r.status === 409,
      );
  if (switched instanceof KubeApiError && switched.status === 409) return { outcome: 'changed' };
  await ctx.progress?.('switched', children);

  // 4. Activate (tidying: the children are live either way).
  await step('activate');
  await Promise.all(children.map((child) => activatePart(ctx, child.metadata.name, child.metadata.uid!, splitFrom)));
  const bytes = (half: { entries: Record<string, string>; data: Record<string, string> }): number =>
    objectDataBytes(ctx.kind, { metadata: { name: '' }, [field]: half.entries, ...(ctx.kind === 'ConfigMap' ? { data: half.data } : {}) });
  return { outcome: 'split', children: children.map((child, i) => ({ name: child.metadata.name, depth, suffix: suffixes[i]!, bytes: bytes(halves[i]!) })) };
}

/**
 * Removes `split-from` from a live part whose parent is gone (step 4, also for a
 * split whose process stopped after its switch): tidying only, so that the part
 * reads as live without looking for its parent. Testing the value makes it a no-op
 * on anything else.
 */
export async function activatePart(ctx: SplitContext, name: string, uid: string, splitFrom: string): Promise<void> {
  const activate: JsonPatchOp[] = [
    { op: 'test', path: '/metadata/uid', value: uid },
    { op: 'test', path: annotationPath(ANNOTATION_SPLIT_FROM), value: splitFrom },
    { op: 'remove', path: annotationPath(ANNOTATION_SPLIT_FROM) },
    { op: 'add', path: '/metadata/managedFields', value: [{}] },
  ];
  await callApi(
    { verb: 'patch', kind: ctx.kind, namespace: ctx.namespace },
    ctx.retry,
    () => ctx.api.jsonPatch({ kind: ctx.kind, namespace: ctx.namespace, name }, activate),
    (r) => r.status === 404 || r.status === 422,
  );
}

/** A refusal that ends a split with a roll back (not a transient failure, which leaves the seal for a later try). */
function isRefusal(error: unknown): boolean {
  if (error instanceof KVError) return !error.retryable;
  return error instanceof KubeApiError;
}

interface ChildSpec {
  name: string;
  depth: number;
  suffix: number;
  headUid: string;
  splitFrom: string;
  /** The parent's resourceVersion the copy is of. */
  rv: string;
  /** True while the parent is sealed at `rv` (asked again before a create that is tried again). */
  stillSealed: () => Promise<boolean>;
}

/**
 * Makes sure a child holds the copy `splitFrom` (step 2). Resolves to the child, or
 * undefined when it holds a newer copy or the parent is no longer sealed at `rv` (this
 * call's seal is stale, or another process switched it).
 */
async function ensureChild(
  ctx: SplitContext,
  call: <T>(verb: string, fn: () => Promise<T>, expected: (refusal: KubeApiError) => boolean) => Promise<T | KubeApiError>,
  spec: ChildSpec,
  half: { entries: Record<string, string>; data: Record<string, string> },
): Promise<KubeObject | undefined> {
  const field = entryField(ctx.kind);
  const ref: ObjectRef = { kind: ctx.kind, namespace: ctx.namespace, name: spec.name };
  const hasData = Object.keys(half.data).length > 0;
  const body: KubeObject = {
    metadata: {
      name: spec.name,
      labels: bucketLabels(ctx.bucket, ctx.app),
      annotations: {
        ...roleAnnotations({ role: 'part', depth: spec.depth, suffix: spec.suffix, headUid: spec.headUid }),
        [ANNOTATION_SPLIT_FROM]: spec.splitFrom,
      },
    },
    ...(Object.keys(half.entries).length > 0 ? { [field]: half.entries } : {}),
    ...(hasData ? { data: half.data } : {}),
    ...(ctx.kind === 'Secret' ? { type: 'Opaque' } : {}),
  };
  for (let attempt = 0; attempt < 4; attempt++) {
    if (attempt > 0 && !(await spec.stillSealed())) return undefined;
    const created = await call(
      'create',
      () => ctx.api.create(ctx.kind, ctx.namespace, body),
      (r) => r.status === 409,
    );
    if (!(created instanceof KubeApiError)) return created;
    const existing = await call(
      'get',
      () => ctx.api.get(ref),
      (r) => r.status === 404,
    );
    if (existing instanceof KubeApiError) continue; // deleted meanwhile: create again
    const role = parseRole(existing.metadata.annotations);
    checkOwnership(existing, ctx); // a foreign object in the way: refused (the split rolls back)
    if (role.role !== 'part' || role.headUid !== spec.headUid) {
      // Left over from an earlier bucket of this name: not ours to keep.
      const { uid, resourceVersion } = existing.metadata;
      await call(
        'delete',
        () => ctx.api.delete(ref, { uid: uid!, resourceVersion: resourceVersion! }),
        (r) => r.status === 404 || r.status === 409,
      );
      continue;
    }
    const source = splitSource(existing.metadata.annotations);
    const found = existing.metadata.annotations?.[ANNOTATION_SPLIT_FROM];
    if (found === spec.splitFrom) return existing;
    if (!source || rvNumber(source.resourceVersion) > rvNumber(spec.rv)) return undefined; // live already, or a newer copy
    // A copy from an earlier, rolled-back split of the parent: replace it, if it is still that copy.
    const replace: JsonPatchOp[] = [
      { op: 'test', path: '/metadata/uid', value: existing.metadata.uid },
      { op: 'test', path: annotationPath(ANNOTATION_SPLIT_FROM), value: found ?? null },
      { op: 'add', path: `/${field}`, value: half.entries },
      ...(ctx.kind === 'ConfigMap' ? [{ op: 'add' as const, path: '/data', value: half.data }] : []),
      { op: 'add', path: annotationPath(ANNOTATION_SPLIT_FROM), value: spec.splitFrom },
      { op: 'add', path: '/metadata/managedFields', value: [{}] },
    ];
    const replaced = await call(
      'patch',
      () => ctx.api.jsonPatch(ref, replace),
      (r) => r.status === 404 || r.status === 422,
    );
    if (!(replaced instanceof KubeApiError)) return replaced;
  }
  throw new KubeApiError(409, 'Conflict', `part ${spec.name} kept changing while it was being copied`);
}
