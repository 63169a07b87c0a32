/**
 * An in-memory {@link KubeApi} that behaves like the real API server for the
 * calls k8s-kv makes (what client-go's fake clientset is to Go): object name,
 * data key, label and 1 MiB rules; 404/409/410/422 answers with the server's
 * reasons; resourceVersions; merge and JSON patches; preconditions; watches with
 * history and expiry. Test hooks inject faults, refuse verbs (RBAC) and count calls.
 */
import { randomUUID } from 'node:crypto';
import { validateObject } from './object-rules.ts';
import { applyJsonPatch, applyMergePatch, PatchError, type WireJsonPatchOp } from './patch-ops.ts';
import {
  KubeApiError,
  resourceOf,
  type DeletePreconditions,
  type JsonPatchOp,
  type KubeApi,
  type KubeObject,
  type ObjectKind,
  type ObjectList,
  type ObjectRef,
  type PatchOptions,
  type Selectors,
  type WatchEvent,
  type WatchHandle,
  type WatchOptions,
} from './port.ts';

/** API verbs, as RBAC names them. */
export type ApiVerb = 'get' | 'list' | 'watch' | 'create' | 'patch' | 'delete';

/** Options of {@link createMemoryApi}. */
export interface MemoryApiOptions {
  /** Namespaces that exist. Default: every namespace exists. */
  namespaces?: string[];
  /** How many past events a watch can resume from before answering 410 Gone (default 1000). */
  watchHistory?: number;
}

/** Refuses what the fake's strategic merge patch does not model: `$` directives, and lists other than managedFields. */
function checkStrategicPatch(value: unknown, path: string): void {
  if (Array.isArray(value)) {
    if (path !== '/metadata/managedFields')
      throw new Error(`createMemoryApi: strategic merge patches of lists (${path}) are not modelled; use mergePatch or jsonPatch`);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  for (const [key, child] of Object.entries(value)) {
    if (key.startsWith('$')) throw new Error(`createMemoryApi: strategic merge patch directive ${key} is not modelled`);
    checkStrategicPatch(child, `${path}/${key}`);
  }
}

/** A fault to inject into the next matching calls. */
export interface InjectedFault {
  /** Only calls of this verb fail (default: any). */
  verb?: ApiVerb;
  /** How many calls fail (default 1). */
  count?: number;
  /** What they throw: an HTTP status (a Status-shaped {@link KubeApiError}) or any error (e.g. a network error). */
  error: number | Error;
}

/** The in-memory port plus hooks for tests. */
export interface MemoryApi extends KubeApi {
  /** Number of calls made, by verb. */
  readonly calls: Record<ApiVerb, number>;
  /** Makes a namespace exist (when the `namespaces` option restricted them). */
  createNamespace(name: string): void;
  /** Makes the next matching calls fail. */
  injectFault(fault: InjectedFault): void;
  /** Refuses a verb on a kind (in one namespace, or all) with 403, like RBAC. */
  forbid(verb: ApiVerb, kind?: ObjectKind, namespace?: string): void;
  /** Lifts every {@link forbid}. */
  allowAll(): void;
  /** Ends every running watch as a server timeout does (no error). */
  closeWatches(): void;
  /** Forgets the event history and ends every watch with 410 Gone, as after etcd compaction. */
  expireWatches(): void;
  /** Returns a copy of a stored object, or undefined (no call counted, no fault applied). */
  peek(ref: ObjectRef): KubeObject | undefined;
  /** Replaces a stored object as `kubectl replace` would, bypassing validation (to plant corrupt or foreign data). */
  plant(kind: ObjectKind, namespace: string, object: KubeObject): KubeObject;
  /** Resets calls counters. */
  resetCalls(): void;
}

interface Watcher {
  kind: ObjectKind;
  namespace: string;
  selector: (object: KubeObject) => boolean;
  options: WatchOptions;
  active: boolean;
}

interface HistoryEvent {
  rv: number;
  kind: ObjectKind;
  namespace: string;
  event: WatchEvent;
}

/** Builds a matcher from a label selector and a `metadata.name=` / `metadata.namespace=` field selector. */
function matcher(selectors: Selectors): (object: KubeObject) => boolean {
  const labels = parseSelector(selectors.labelSelector ?? '');
  const fields = parseSelector(selectors.fieldSelector ?? '');
  return (object) =>
    labels(object.metadata.labels ?? {}) && fields({ 'metadata.name': object.metadata.name, 'metadata.namespace': object.metadata.namespace ?? '' });
}

/** Parses the selector forms k8s-kv and kubectl use: `k=v`, `k==v`, `k!=v`, `k`, `!k`. */
function parseSelector(selector: string): (labels: Record<string, string>) => boolean {
  const terms = selector
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
    .map((term) => {
      let m: RegExpMatchArray | null;
      // biome-ignore lint/suspicious/noAssignInExpressions: match and test in one condition
      if ((m = term.match(/^([^!=]+)!=(.*)$/))) {
        const [, k, v] = m;
        return (l: Record<string, string>) => l[k!.trim()] !== v!.trim();
      }
      // biome-ignore lint/suspicious/noAssignInExpressions: match and test in one condition
      if ((m = term.match(/^([^!=]+)==?(.*)$/))) {
        const [, k, v] = m;
        return (l: Record<string, string>) => l[k!.trim()] === v!.trim();
      }
      if (term.startsWith('!')) return (l: Record<string, string>) => !(term.slice(1) in l);
      return (l: Record<string, string>) => term in l;
    });
  return (labels) => terms.every((t) => t(labels));
}

function notFound(kind: ObjectKind, name: string): KubeApiError {
  const resource = resourceOf(kind);
  return new KubeApiError(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource });
}

function conflict(kind: ObjectKind, name: string, detail?: string): KubeApiError {
  const resource = resourceOf(kind);
  return new KubeApiError(
    409,
    'Conflict',
    detail ??
      `Operation cannot be fulfilled on ${resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, kind: resource },
  );
}

function invalid(kind: ObjectKind, name: string, causes: Array<{ field: string; message: string }>): KubeApiError {
  const message = `${kind} "${name}" is invalid: ${causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)).join(', ')}`;
  return new KubeApiError(422, 'Invalid', message, {
    name,
    kind,
    causes: causes.map((c) => ({ field: c.field, message: c.message, reason: c.message.startsWith('Too long') ? 'FieldValueTooLong' : 'FieldValueInvalid' })),
  });
}

/** Creates an in-memory Kubernetes API for ConfigMaps and Secrets. */
export function createMemoryApi(options: MemoryApiOptions = {}): MemoryApi {
  const objects = new Map<string, KubeObject>();
  const namespaces = options.namespaces ? new Set(options.namespaces) : undefined;
  const historyLimit = options.watchHistory ?? 1000;
  let history: HistoryEvent[] = [];
  let oldestResumable = 0;
  let rv = 1;
  const watchers = new Set<Watcher>();
  const faults: Array<Required<Pick<InjectedFault, 'count'>> & InjectedFault> = [];
  const forbidden: Array<{ verb: ApiVerb; kind?: ObjectKind | undefined; namespace?: string | undefined }> = [];
  const calls: Record<ApiVerb, number> = { get: 0, list: 0, watch: 0, create: 0, patch: 0, delete: 0 };

  const keyOf = (kind: ObjectKind, namespace: string, name: string): string => `${kind}/${namespace}/${name}`;

  async function enter(verb: ApiVerb, kind: ObjectKind, namespace: string): Promise<void> {
    await Promise.resolve();
    calls[verb] += 1;
    const fault = faults.find((f) => f.verb === undefined || f.verb === verb);
    if (fault) {
      fault.count -= 1;
      if (fault.count <= 0) faults.splice(faults.indexOf(fault), 1);
      if (typeof fault.error === 'number') {
        throw new KubeApiError(fault.error, fault.error === 429 ? 'TooManyRequests' : 'InternalError', `injected fault: HTTP ${fault.error}`);
      }
      throw fault.error;
    }
    const refused = forbidden.find((f) => f.verb === verb && (!f.kind || f.kind === kind) && (!f.namespace || f.namespace === namespace));
    if (refused) {
      const resource = resourceOf(kind);
      throw new KubeApiError(
        403,
        'Forbidden',
        `${resource} is forbidden: User "memory-user" cannot ${verb} resource "${resource}" in API group "" in the namespace "${namespace}"`,
        { kind: resource },
      );
    }
  }

  function emit(kind: ObjectKind, namespace: string, type: WatchEvent['type'], object: KubeObject): void {
    const version = Number(object.metadata.resourceVersion);
    history.push({ rv: version, kind, namespace, event: { type, object: structuredClone(object) } });
    if (history.length > historyLimit) {
      const dropped = history.splice(0, history.length - historyLimit);
      oldestResumable = dropped[dropped.length - 1]!.rv;
    }
    for (const watcher of watchers) {
      if (watcher.kind !== kind || watcher.namespace !== namespace || !watcher.selector(object)) continue;
      const event = { type, object: structuredClone(object) };
      queueMicrotask(() => {
        if (watcher.active) watcher.options.onEvent(event);
      });
    }
  }

  function endWatch(watcher: Watcher, error?: unknown): void {
    if (!watcher.active) return;
    watcher.active = false;
    watchers.delete(watcher);
    queueMicrotask(() => watcher.options.onClose(error));
  }

  function store(kind: ObjectKind, namespace: string, next: KubeObject, type: 'ADDED' | 'MODIFIED'): KubeObject {
    rv += 1;
    next.metadata.resourceVersion = String(rv);
    objects.set(keyOf(kind, namespace, next.metadata.name), next);
    emit(kind, namespace, type, next);
    return structuredClone(next);
  }

  /** A patch's answer: the object, or (metadataOnly) its metadata as `PartialObjectMetadata`. */
  function answer(object: KubeObject, options: PatchOptions | undefined): KubeObject {
    if (!options?.metadataOnly) return object;
    return { apiVersion: 'meta.k8s.io/v1', metadata: object.metadata };
  }

  function existing(ref: ObjectRef): KubeObject {
    const object = objects.get(keyOf(ref.kind, ref.namespace, ref.name));
    if (!object) throw notFound(ref.kind, ref.name);
    return object;
  }

  /** Validates and stores `next` as an update of `current`, the way the server's update path does. */
  function update(ref: ObjectRef, current: KubeObject, next: KubeObject): KubeObject {
    const name = ref.name;
    if (!next || typeof next !== 'object' || !next.metadata) throw invalid(ref.kind, name, [{ field: 'metadata', message: 'Required value' }]);
    if (next.metadata.resourceVersion !== undefined && next.metadata.resourceVersion !== current.metadata.resourceVersion) {
      throw conflict(ref.kind, name);
    }
    const causes: Array<{ field: string; message: string }> = [];
    if (next.metadata.uid !== undefined && next.metadata.uid !== current.metadata.uid) {
      causes.push({ field: 'metadata.uid', message: `Invalid value: ${JSON.stringify(next.metadata.uid)}: field is immutable` });
    }
    if (next.metadata.name !== name) causes.push({ field: 'metadata.name', message: 'field is immutable' });
    if (next.metadata.namespace !== undefined && next.metadata.namespace !== ref.namespace)
      causes.push({ field: 'metadata.namespace', message: 'field is immutable' });
    if (current.immutable) {
      if (
        JSON.stringify(next.data ?? {}) !== JSON.stringify(current.data ?? {}) ||
        JSON.stringify(next.binaryData ?? {}) !== JSON.stringify(current.binaryData ?? {})
      ) {
        causes.push({ field: 'data', message: 'Forbidden: field is immutable when `immutable` is set' });
      }
      if (next.immutable !== true) causes.push({ field: 'immutable', message: 'Forbidden: field is immutable when `immutable` is set' });
    }
    causes.push(...validateObject(ref.kind, next));
    if (causes.length) throw invalid(ref.kind, name, causes);
    const cleaned = normalize(ref.kind, next);
    cleaned.metadata = { ...cleaned.metadata, uid: current.metadata.uid!, namespace: ref.namespace, creationTimestamp: current.metadata.creationTimestamp! };
    return store(ref.kind, ref.namespace, cleaned, 'MODIFIED');
  }

  /** Drops empty maps, as the server's protobuf storage does. */
  function normalize(kind: ObjectKind, object: KubeObject): KubeObject {
    const out = structuredClone(object);
    out.apiVersion = 'v1';
    out.kind = kind;
    if (out.data && Object.keys(out.data).length === 0) delete out.data;
    if (out.binaryData && Object.keys(out.binaryData).length === 0) delete out.binaryData;
    if (out.metadata.labels && Object.keys(out.metadata.labels).length === 0) delete out.metadata.labels;
    if (out.metadata.annotations && Object.keys(out.metadata.annotations).length === 0) delete out.metadata.annotations;
    // `[{}]` is the server's way of saying "clear the field ownership records".
    const managed = out.metadata.managedFields;
    if (managed?.length === 1 && Object.keys(managed[0]!).length === 0) delete out.metadata.managedFields;
    return out;
  }

  const api: MemoryApi = {
    calls,

    async get(ref) {
      await enter('get', ref.kind, ref.namespace);
      return structuredClone(existing(ref));
    },

    async list(kind, namespace, selectors, options): Promise<ObjectList> {
      await enter('list', kind, namespace);
      const selector = matcher(selectors);
      const items = [...objects.entries()]
        .filter(([key, object]) => key.startsWith(namespace === '' ? `${kind}/` : `${kind}/${namespace}/`) && selector(object))
        .map(([, object]) =>
          options?.metadataOnly
            ? ({ apiVersion: 'meta.k8s.io/v1', kind: 'PartialObjectMetadata', metadata: structuredClone(object.metadata) } as unknown as KubeObject)
            : structuredClone(object),
        );
      return { items, resourceVersion: String(rv) };
    },

    async create(kind, namespace, body) {
      await enter('create', kind, namespace);
      if (namespaces && !namespaces.has(namespace)) {
        throw new KubeApiError(404, 'NotFound', `namespaces "${namespace}" not found`, { name: namespace, kind: 'namespaces' });
      }
      const name = body.metadata?.name ?? '';
      const causes = validateObject(kind, body);
      if (body.metadata?.resourceVersion) causes.push({ field: 'metadata.resourceVersion', message: 'Invalid value: must be empty on create' });
      if (causes.length) throw invalid(kind, name, causes);
      if (objects.has(keyOf(kind, namespace, name))) {
        const resource = resourceOf(kind);
        throw new KubeApiError(409, 'AlreadyExists', `${resource} "${name}" already exists`, { name, kind: resource });
      }
      const object = normalize(kind, body);
      object.metadata = { ...object.metadata, namespace, uid: randomUUID(), creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
      return store(kind, namespace, object, 'ADDED');
    },

    async mergePatch(ref, patch, options) {
      await enter('patch', ref.kind, ref.namespace);
      const current = existing(ref);
      const next = applyMergePatch(structuredClone(current), patch) as KubeObject;
      return answer(update(ref, current, next), options);
    },

    async strategicMergePatch(ref, patch, options) {
      // On the maps and scalars of a ConfigMap or Secret a strategic merge patch is a merge patch.
      // Lists (merged by key) and `$` directives are where they differ: not modelled, refused.
      checkStrategicPatch(patch, '');
      await enter('patch', ref.kind, ref.namespace);
      const current = existing(ref);
      const next = applyMergePatch(structuredClone(current), patch) as KubeObject;
      return answer(update(ref, current, next), options);
    },

    async jsonPatch(ref, ops: JsonPatchOp[], options) {
      await enter('patch', ref.kind, ref.namespace);
      const current = existing(ref);
      let next: KubeObject;
      try {
        next = applyJsonPatch(structuredClone(current), ops as WireJsonPatchOp[]) as KubeObject;
      } catch (error) {
        if (error instanceof PatchError) {
          // Like the real server, a failed operation (a failed `test`, a missing path) is a bare 422 that does not say which.
          if (error.status === 422) throw new KubeApiError(422, 'Invalid', 'the server rejected our request due to an error in our request', {});
          throw new KubeApiError(400, 'BadRequest', error.message);
        }
        throw error;
      }
      return answer(update(ref, current, next), options);
    },

    async delete(ref, preconditions?: DeletePreconditions) {
      await enter('delete', ref.kind, ref.namespace);
      const current = existing(ref);
      if (preconditions?.uid !== undefined && preconditions.uid !== current.metadata.uid) {
        throw conflict(ref.kind, ref.name, `Precondition failed: UID in precondition: ${preconditions.uid}, UID in object meta: ${current.metadata.uid}`);
      }
      if (preconditions?.resourceVersion !== undefined && preconditions.resourceVersion !== current.metadata.resourceVersion) {
        throw conflict(
          ref.kind,
          ref.name,
          `Precondition failed: ResourceVersion in precondition: ${preconditions.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`,
        );
      }
      objects.delete(keyOf(ref.kind, ref.namespace, ref.name));
      rv += 1;
      const tombstone = structuredClone(current);
      tombstone.metadata.resourceVersion = String(rv);
      emit(ref.kind, ref.namespace, 'DELETED', tombstone);
    },

    async watch(kind, namespace, watchOptions): Promise<WatchHandle> {
      await enter('watch', kind, namespace);
      const from = Number(watchOptions.resourceVersion);
      if (from < oldestResumable) {
        throw new KubeApiError(410, 'Expired', `too old resource version: ${from} (${oldestResumable + 1})`);
      }
      const watcher: Watcher = { kind, namespace, selector: matcher(watchOptions), options: watchOptions, active: true };
      const backlog = history.filter((h) => h.rv > from && h.kind === kind && h.namespace === namespace && watcher.selector(h.event.object));
      watchers.add(watcher);
      for (const h of backlog) {
        const event = structuredClone(h.event);
        queueMicrotask(() => {
          if (watcher.active) watchOptions.onEvent(event);
        });
      }
      return {
        stop() {
          watcher.active = false;
          watchers.delete(watcher);
        },
      };
    },

    createNamespace(name) {
      namespaces?.add(name);
    },
    injectFault(fault) {
      faults.push({ ...fault, count: fault.count ?? 1 });
    },
    forbid(verb, kind, namespace) {
      forbidden.push({ verb, kind, namespace });
    },
    allowAll() {
      forbidden.length = 0;
    },
    closeWatches() {
      for (const watcher of [...watchers]) endWatch(watcher);
    },
    expireWatches() {
      oldestResumable = rv;
      history = [];
      for (const watcher of [...watchers]) endWatch(watcher, new KubeApiError(410, 'Expired', 'too old resource version'));
    },
    peek(ref) {
      const object = objects.get(keyOf(ref.kind, ref.namespace, ref.name));
      return object ? structuredClone(object) : undefined;
    },
    plant(kind, namespace, object) {
      const key = keyOf(kind, namespace, object.metadata.name);
      const previous = objects.get(key);
      const planted = normalize(kind, object);
      planted.metadata = { ...planted.metadata, namespace, uid: previous?.metadata.uid ?? randomUUID(), creationTimestamp: new Date().toISOString() };
      return store(kind, namespace, planted, previous ? 'MODIFIED' : 'ADDED');
    },
    resetCalls() {
      for (const verb of Object.keys(calls) as ApiVerb[]) calls[verb] = 0;
    },
  };
  return api;
}
