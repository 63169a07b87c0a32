/**
 * Classifies what the port throws: transient (worth repeating, see retry-policy.ts)
 * or not, and the typed error a user sees for it.
 */
import { ApiError, ForbiddenError, KVError, NamespaceNotFoundError, UnauthorizedError, UnavailableError, UntrustedServerError } from '../errors.ts';
import { KubeApiError, KubeConnectionError, NOT_SENT, resourceOf, type ObjectKind } from '../kube/port.ts';

/** etcd's refusals of an object too large to store (key names and metadata count there too). */
export const TOO_LARGE_FOR_ETCD = /request is too large|larger than max/i;

/** True for a KubeApiError with this status (and reason, if given). */
export function isStatus(error: unknown, status: number, reason?: string): error is KubeApiError {
  return error instanceof KubeApiError && error.status === status && (reason === undefined || error.reason === reason);
}

/** True when the failure is transient: the call may succeed if repeated. */
export function isTransient(error: unknown): boolean {
  if (error instanceof KVError) return error.retryable;
  // The server did not answer: worth repeating, unless its certificate is not trusted.
  if (error instanceof KubeConnectionError) return error.failure !== 'untrusted';
  if (error instanceof KubeApiError) {
    if (TOO_LARGE_FOR_ETCD.test(error.message)) return false;
    return error.status === 429 || error.status === 500 || error.status === 502 || error.status === 503 || error.status === 504;
  }
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code ?? (error.cause as { code?: unknown } | undefined)?.code;
  return (
    error.name === 'TimeoutError' ||
    error.name === 'AbortError' ||
    error.message === 'fetch failed' ||
    // Network errors, undici's, and a broken HTTP/2 session or TLS record (a port that does not classify them itself).
    (typeof code === 'string' && /^(E[A-Z]+|UND_ERR_[A-Z_]+|ERR_HTTP2_[A-Z_]+|ERR_SSL_.+)$/.test(code))
  );
}

/** Transport errors raised before the request left this process: nothing reached the server. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', NOT_SENT]);

/**
 * True when a write that failed with this transient error may have been applied
 * by the server all the same (its answer was lost: a reset, a timeout, a 5xx after
 * the server took it). False when the server cannot have applied it: a 429 (refused
 * before processing) or a connection that was never made.
 */
export function mayHaveLanded(error: unknown): boolean {
  if (error instanceof KubeApiError) return error.status !== 429;
  if (!(error instanceof Error)) return true;
  const code = (error as { code?: unknown }).code ?? (error.cause as { code?: unknown } | undefined)?.code;
  return !(typeof code === 'string' && NOT_SENT_CODES.has(code));
}

/** Context of a call, for error messages. */
export interface CallContext {
  verb: string;
  kind: ObjectKind;
  namespace: string;
}

/** How a call that gave up went: recorded by `withRetry` (retry-policy.ts) on the error it throws, quoted by {@link toKVError}. */
export interface RetryRecord {
  attempts: number;
  elapsedMs: number;
  budgetMs: number;
}
const retryRecords = new WeakMap<object, RetryRecord>();

/** Remembers how the retries of the call that failed with `error` went (the first record stays). */
export function recordRetries(error: unknown, record: RetryRecord): void {
  if (typeof error === 'object' && error !== null && !retryRecords.has(error)) retryRecords.set(error, record);
}

/** " Gave up after 4 attempts in 5.0 s; to wait longer or less, set ...", or "" when unknown. */
function retriesSpent(error: unknown): string {
  const record = typeof error === 'object' && error !== null ? retryRecords.get(error) : undefined;
  if (!record) return '';
  const attempts = `${record.attempts} attempt${record.attempts === 1 ? '' : 's'}`;
  return ` Gave up after ${attempts} in ${(record.elapsedMs / 1000).toFixed(1)} s; to wait longer or less, set retry.maxElapsedMs (now ${record.budgetMs} ms) and requestTimeoutMs (the limit of one attempt).`;
}

/** Maps a port failure to the typed error users see. */
export function toKVError(error: unknown, ctx: CallContext): KVError {
  if (error instanceof KVError) return error;
  if (error instanceof KubeConnectionError) {
    if (error.failure === 'untrusted') return new UntrustedServerError(error.server, error.context, error.message, error);
    const where = `${error.server}${error.context ? ` (kube context "${error.context}")` : ''}`;
    const what = error.failure === 'timeout' ? 'did not answer' : 'could not be reached';
    return new UnavailableError(
      `The API server at ${where} ${what} for "${ctx.verb}" ${resourceOf(ctx.kind)}: ${error.message}.${retriesSpent(error)}`,
      error,
      { server: error.server, context: error.context },
    );
  }
  if (error instanceof KubeApiError) {
    if (error.status === 403) return new ForbiddenError(ctx.verb, resourceOf(ctx.kind), ctx.namespace, error);
    if (error.status === 401) return new UnauthorizedError(error);
    if (error.status === 404 && error.details?.kind === 'namespaces') return new NamespaceNotFoundError(ctx.namespace, error);
    if (isTransient(error)) {
      const asked = error.retryAfterSeconds === undefined ? '' : ` It asked to retry after ${error.retryAfterSeconds} s.`;
      return new UnavailableError(
        `The API server answered HTTP ${error.status} to "${ctx.verb}" ${resourceOf(ctx.kind)}: ${error.message}.${asked}${retriesSpent(error)}`,
        error,
      );
    }
    return new ApiError(
      error.status,
      error.reason,
      `The API server refused "${ctx.verb}" ${resourceOf(ctx.kind)}: HTTP ${error.status} ${error.reason ?? ''} ${error.message}`.replace(/\s+/g, ' '),
      error,
    );
  }
  if (isTransient(error)) {
    const reason =
      error instanceof Error ? `${error.message}${(error.cause as Error | undefined)?.message ? ` (${(error.cause as Error).message})` : ''}` : String(error);
    return new UnavailableError(`The API server could not be reached for "${ctx.verb}" ${resourceOf(ctx.kind)}: ${reason}.${retriesSpent(error)}`, error);
  }
  return new KVError('KV_API_ERROR', `Unexpected failure of "${ctx.verb}" ${resourceOf(ctx.kind)}: ${error instanceof Error ? error.message : String(error)}`, {
    cause: error,
  });
}
