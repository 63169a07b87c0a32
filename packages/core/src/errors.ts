/**
 * Typed errors. Every error k8s-kv raises is a {@link KVError} with a stable
 * `code`, a `retryable` flag and a message that says what to do. Messages name
 * keys, buckets and namespaces, never values or credentials.
 */

/** Stable error codes. Match on these, not on messages. */
export type KVErrorCode =
  | 'KV_INVALID_OPTION'
  | 'KV_INVALID_BUCKET_NAME'
  | 'KV_INVALID_KEY'
  | 'KV_INVALID_VALUE'
  | 'KV_VALUE_TOO_LARGE'
  | 'KV_BUCKET_FULL'
  | 'KV_FORBIDDEN'
  | 'KV_UNAUTHORIZED'
  | 'KV_NAMESPACE_NOT_FOUND'
  | 'KV_FOREIGN_OBJECT'
  | 'KV_UNSUPPORTED_FORMAT'
  | 'KV_CORRUPT_ENTRY'
  | 'KV_CONFLICT'
  | 'KV_UNAVAILABLE'
  | 'KV_UNTRUSTED_SERVER'
  | 'KV_CLOSED'
  | 'KV_API_ERROR';

/** Where RBAC for k8s-kv is documented; quoted by {@link ForbiddenError}. */
export const RBAC_DOC_POINTER = 'see "RBAC" in the @k8s-kv/core README (manifest: deploy/rbac.yaml)';

/** Base class of every error raised by k8s-kv. */
export class KVError extends Error {
  /** Stable machine-readable code. */
  readonly code: KVErrorCode;
  /** True when the same call may succeed if repeated later. */
  readonly retryable: boolean;

  constructor(code: KVErrorCode, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options?.retryable ?? false;
  }
}

/** An option passed to `createKV` (or a driver) is missing or malformed. */
export class InvalidOptionError extends KVError {
  /** The option's name. */
  readonly option: string;
  constructor(option: string, message: string) {
    super('KV_INVALID_OPTION', message);
    this.option = option;
  }
}

/** The bucket name cannot be used as a ConfigMap name and label value. */
export class InvalidBucketNameError extends KVError {
  /** The rejected bucket name. */
  readonly bucket: string;
  constructor(bucket: string, reason: string) {
    super(
      'KV_INVALID_BUCKET_NAME',
      `Invalid bucket name ${JSON.stringify(bucket)}: ${reason}. ` +
        'Use 1-63 lowercase letters, digits, "-" or ".", starting and ending with a letter or digit (e.g. "my-app-state").',
    );
    this.bucket = bucket;
  }
}

/** A key is not a string. Any string (including "" and unicode) is a valid key. */
export class InvalidKeyError extends KVError {
  constructor(message: string) {
    super('KV_INVALID_KEY', message);
  }
}

/** A value has a type the store cannot keep (only strings and bytes are stored). */
export class InvalidValueError extends KVError {
  /** The key the value was meant for. */
  readonly key: string;
  constructor(key: string, message: string) {
    super('KV_INVALID_VALUE', message);
    this.key = key;
  }
}

/** One value is larger than a whole bucket may hold. Raised before any API call. */
export class ValueTooLargeError extends KVError {
  /** The key the value was meant for. */
  readonly key: string;
  /** Encoded size of the entry in bytes. */
  readonly size: number;
  /** The limit in bytes. */
  readonly limit: number;
  constructor(key: string, size: number, limit: number) {
    super(
      'KV_VALUE_TOO_LARGE',
      `Value for key ${JSON.stringify(key)} is ${size} bytes once encoded; a bucket holds at most ${limit} bytes ` +
        '(the Kubernetes ConfigMap limit). Store it in smaller pieces or elsewhere.',
    );
    this.key = key;
    this.size = size;
    this.limit = limit;
  }
}

/** More of a {@link BucketFullError}: what else the write ran into. */
export interface BucketFullDetail {
  /** Set when the limit is the object's share of the bucket's `maxBytes` (it may not split any more): the option's value. */
  maxBytes?: number | undefined;
  /** Set when the bucket has an entry budget (`maxEntries`): entries held, after the write, and the budget (of the full object). */
  entries?: { current: number; attempted: number; limit: number } | undefined;
  /** The store's eviction policy (option `evict`), when it has one. */
  evict?: string | undefined;
  /** Making room would take more removals than one patch can carry. */
  tooManyRemovals?: boolean | undefined;
  /** How many entries the write held. */
  writing?: number | undefined;
}

/**
 * The write would take the bucket (or the object of it that holds the keys) over
 * its budget (option `maxBytes` or `maxEntries`) or over the 1 MiB ConfigMap limit,
 * and the store may not evict to make room (option `evict`), or not even evicting
 * every other entry would. Nothing was written.
 */
export class BucketFullError extends KVError {
  /** The bucket's name. */
  readonly bucket: string;
  /** Bytes the bucket holds now (sum of entry sizes, as the API server counts them); of the full object (shard or part), in a bucket of several. */
  readonly currentBytes: number;
  /** Bytes the bucket (or object) would hold after the write. */
  readonly attemptedBytes: number;
  /** The limit in bytes: of one ConfigMap or Secret, or the object's share of the bucket's `maxBytes`. */
  readonly limitBytes: number;
  /** In a sharded bucket: the shard that is full (index, the bucket's shard count, object name). */
  readonly shard: { index: number; count: number; name: string } | undefined;
  /** Set when the bucket reached its `maxBytes` (it may not split any more): the option's value. */
  readonly maxBytes: number | undefined;
  /** With an entry budget (`maxEntries`): entries held now, after the write, and the limit (of the full object). */
  readonly entries: { current: number; attempted: number; limit: number } | undefined;
  constructor(
    bucket: string,
    currentBytes: number,
    attemptedBytes: number,
    limitBytes: number,
    cause?: unknown,
    shard?: { index: number; count: number; name: string },
    detail: BucketFullDetail = {},
  ) {
    const { entries, evict, maxBytes } = detail;
    const overEntries = entries !== undefined && entries.attempted > entries.limit && attemptedBytes <= limitBytes;
    const where = shard ? `Shard ${shard.index} of ${shard.count} ("${shard.name}") of bucket` : 'Bucket';
    const limit =
      maxBytes === undefined
        ? `the ${limitBytes}-byte ConfigMap limit`
        : maxBytes === limitBytes
          ? `the bucket's maxBytes (${maxBytes})`
          : `its share (${limitBytes} bytes per ConfigMap) of the bucket's maxBytes (${maxBytes})`;
    const usage = overEntries
      ? `it holds ${entries.current} entries and the write would make it ${entries.attempted}, over its share (${entries.limit}) of the bucket's maxEntries`
      : `it holds ${currentBytes} bytes and the write would make it ${attemptedBytes} bytes, over ${limit}`;
    let advice: string;
    if (evict !== undefined) {
      advice = detail.tooManyRemovals
        ? 'Making room would take more removals than one patch can carry: write fewer or smaller entries at a time.'
        : `The ${detail.writing ?? 'new'} entr${detail.writing === 1 ? 'y does' : 'ies do'} not fit even with every other entry evicted (evict: ${JSON.stringify(evict)}): write fewer or smaller entries at a time, or raise the budget.`;
    } else {
      advice =
        "If the bucket is a cache, create the store with evict: 'oldest' (or 'expiring') and the oldest entries make room instead. Otherwise " +
        (overEntries
          ? 'create the store with a larger maxEntries, delete keys, or set TTLs.'
          : maxBytes !== undefined
            ? 'create the store with a larger maxBytes (at most 1 GiB; over 1 MiB the bucket splits into more ConfigMaps as it grows), delete keys, or set TTLs.'
            : shard
              ? 'delete keys, set TTLs, or move the data to a bucket with more shards (keys are spread over the shards by a hash of the key; a bucket keeps the shard count it was created with).'
              : 'delete keys or set TTLs; a bucket created without `shards` and with a maxBytes over 1 MiB splits into more ConfigMaps as it grows.');
    }
    super('KV_BUCKET_FULL', `${where} ${JSON.stringify(bucket)} is full: ${usage}. Nothing was written. ${advice}`, { cause });
    this.shard = shard;
    this.bucket = bucket;
    this.currentBytes = currentBytes;
    this.attemptedBytes = attemptedBytes;
    this.limitBytes = limitBytes;
    this.maxBytes = maxBytes;
    this.entries = entries;
  }
}

/**
 * The user the API server named in a refusal: "alice" from a Status message
 * such as `... is forbidden: User "alice" cannot get resource ...` (service
 * accounts appear as `system:serviceaccount:NAMESPACE:NAME`).
 */
function refusedUser(cause: unknown): string | undefined {
  const message = cause instanceof Error ? cause.message : typeof cause === 'string' ? cause : '';
  return /\bUser "([^"]+)" cannot\b/.exec(message)?.[1];
}

/** The identity in use may not perform an API call the store needs. */
export class ForbiddenError extends KVError {
  /** The API verb that was refused (get, list, watch, create, patch, delete). */
  readonly verb: string;
  /** The resource (configmaps or secrets). */
  readonly resource: string;
  /** The namespace ("" for a cluster-wide call). */
  readonly namespace: string;
  /** The user the API server named in its refusal (e.g. "system:serviceaccount:shop:web"), if it named one. */
  readonly user: string | undefined;
  constructor(verb: string, resource: string, namespace: string, cause?: unknown) {
    const user = refusedUser(cause);
    const who = user === undefined ? 'this identity' : `user ${JSON.stringify(user)}`;
    super(
      'KV_FORBIDDEN',
      namespace === ''
        ? `Forbidden: ${who} may not "${verb}" ${resource} in every namespace (cluster-wide). ` +
            `Grant a ClusterRole with verb ${verb} on ${resource}, or name one namespace (${RBAC_DOC_POINTER}).`
        : `Forbidden: ${who} may not "${verb}" ${resource} in namespace "${namespace}". ` +
            `Grant a Role with verbs get, list, watch, create, patch, delete on ${resource} (${RBAC_DOC_POINTER}).`,
      { cause },
    );
    this.verb = verb;
    this.resource = resource;
    this.namespace = namespace;
    this.user = user;
  }
}

/** The API server did not accept the credentials (401). */
export class UnauthorizedError extends KVError {
  constructor(cause?: unknown) {
    super(
      'KV_UNAUTHORIZED',
      'Unauthorized: the API server rejected the credentials of the current kubeconfig context or service account. ' +
        'Check the token or certificate (kubectl auth whoami).',
      { cause },
    );
  }
}

/** The namespace the bucket lives in does not exist. */
export class NamespaceNotFoundError extends KVError {
  /** The missing namespace. */
  readonly namespace: string;
  constructor(namespace: string, cause?: unknown) {
    super(
      'KV_NAMESPACE_NOT_FOUND',
      `Namespace "${namespace}" does not exist. Create it (kubectl create namespace ${namespace}) or pass another "namespace" option.`,
      { cause },
    );
    this.namespace = namespace;
  }
}

/** An object with the bucket's name exists but was not created by k8s-kv for this bucket. It was not changed. */
export class ForeignObjectError extends KVError {
  /** The object's kind (ConfigMap or Secret). */
  readonly kind: string;
  /** The object's name. */
  readonly objectName: string;
  /** The namespace. */
  readonly namespace: string;
  /** When the object is a k8s-kv bucket of another app: that app's name. */
  readonly ownerApp: string | undefined;
  constructor(kind: string, name: string, namespace: string, why: string, ownerApp?: string) {
    super(
      'KV_FOREIGN_OBJECT',
      `${kind} "${name}" in namespace "${namespace}" was not created by k8s-kv for this bucket (${why}); ` +
        'k8s-kv neither reads nor changes it, and changed nothing. ' +
        (ownerApp === undefined ? 'Choose another bucket name.' : `If the bucket is yours, use app "${ownerApp}"; otherwise choose another bucket name.`),
    );
    this.kind = kind;
    this.objectName = name;
    this.namespace = namespace;
    this.ownerApp = ownerApp;
  }
}

/**
 * The bucket's object says it uses a storage format this version does not know
 * (annotation `k8s-kv.io/format`). Nothing was read or changed: a later format
 * may keep entries elsewhere, which this version would miss or overwrite.
 */
export class UnsupportedFormatError extends KVError {
  /** The format the object declares. */
  readonly format: string;
  constructor(kind: string, name: string, namespace: string, format: string) {
    super(
      'KV_UNSUPPORTED_FORMAT',
      `${kind} "${name}" in namespace "${namespace}" uses k8s-kv storage format ${JSON.stringify(format)}, which this version of @k8s-kv/core ` +
        'does not know (it reads and writes formats "1" and "2"). Nothing was read or changed; upgrade @k8s-kv/core to use this bucket.',
    );
    this.format = format;
  }
}

/** A stored entry cannot be decoded (edited by hand, or written by something else). Only this key is affected. */
export class CorruptEntryError extends KVError {
  /** The user key, or the raw ConfigMap data key when the user key cannot be recovered. */
  readonly key: string;
  constructor(key: string, reason: string) {
    super(
      'KV_CORRUPT_ENTRY',
      `Entry ${JSON.stringify(key)} is corrupt (${reason}). Other keys are unaffected; ` + 'overwrite it with put() or remove it with delete().',
    );
    this.key = key;
  }
}

/** A compare-and-swap kept losing to concurrent writers until its attempts ran out. */
export class ConflictError extends KVError {
  /** The contended key, if the conflict was on one key. */
  readonly key: string | undefined;
  constructor(message: string, key?: string, cause?: unknown) {
    super('KV_CONFLICT', message, { cause, retryable: true });
    this.key = key;
  }
}

/** The API server could not be reached or answered with a transient failure, after retries. */
export class UnavailableError extends KVError {
  /** The API server's URL, when the failure was reaching it. */
  readonly server: string | undefined;
  /** The kubeconfig context in use, when known. */
  readonly context: string | undefined;
  constructor(message: string, cause?: unknown, where?: { server?: string | undefined; context?: string | undefined }) {
    super('KV_UNAVAILABLE', message, { cause, retryable: true });
    this.server = where?.server;
    this.context = where?.context;
  }
}

/**
 * The API server's TLS certificate failed verification (signed by an unknown
 * authority, self-signed, issued for another name, expired): the connection
 * was refused before anything was sent. Not retryable: the kubeconfig's CA or
 * server address must change.
 */
export class UntrustedServerError extends KVError {
  /** The API server's URL. */
  readonly server: string;
  /** The kubeconfig context in use, when known. */
  readonly context: string | undefined;
  constructor(server: string, context: string | undefined, reason: string, cause?: unknown) {
    super(
      'KV_UNTRUSTED_SERVER',
      `The API server at ${server}${context ? ` (kube context "${context}")` : ''} presented a TLS certificate that is not trusted: ${reason}. ` +
        "Nothing was sent. Check the cluster's certificate-authority or certificate-authority-data in the kubeconfig (kubectl config view --minify), " +
        'and that the server address (or tls-server-name) is a name the certificate was issued for.',
      { cause },
    );
    this.server = server;
    this.context = context;
  }
}

/** The store was used after `close()`. */
export class ClosedError extends KVError {
  constructor() {
    super('KV_CLOSED', 'This k8s-kv store was closed; create a new one with createKV().');
  }
}

/** Any other error answer from the API server. */
export class ApiError extends KVError {
  /** HTTP status code. */
  readonly status: number;
  /** Kubernetes `reason`, e.g. "Invalid". */
  readonly reason: string | undefined;
  constructor(status: number, reason: string | undefined, message: string, cause?: unknown) {
    super('KV_API_ERROR', message, { cause, retryable: status >= 500 || status === 429 });
    this.status = status;
    this.reason = reason;
  }
}

/**
 * A copy of a k8s-kv error whose message starts with `prefix` (e.g. a driver's
 * `[unstorage] [k8s-kv] bucket "x": `): the same class, so `instanceof` and
 * `code` keep working, the same fields, and the original as `cause`. Drivers
 * use it to say where an error comes from. An error whose message already
 * starts with `prefix`, and anything that is not a KVError, is returned as is.
 */
export function withMessagePrefix<T>(error: T, prefix: string): T {
  if (!(error instanceof KVError) || error.message.startsWith(prefix)) return error;
  const copy = Object.create(Object.getPrototypeOf(error) as object) as KVError;
  Object.assign(copy, error);
  const message = prefix + error.message;
  const frames = error.stack?.split('\n').slice(1).join('\n');
  Object.defineProperties(copy, {
    message: { value: message, writable: true, configurable: true },
    cause: { value: error, writable: true, configurable: true },
    stack: { value: `${error.name}: ${message}${frames ? `\n${frames}` : ''}`, writable: true, configurable: true },
  });
  return copy as T;
}
