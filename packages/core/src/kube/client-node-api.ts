/**
 * The real {@link KubeApi}: HTTP calls to the API server, authenticated and
 * TLS-configured by @kubernetes/client-node's `KubeConfig` (which handles
 * kubeconfig files, exec plugins, token refresh and in-cluster service
 * accounts), sent with undici (the HTTP client client-node itself uses).
 * Responses are requested uncompressed: on the networks an API server is
 * reached over, gzip of a large ConfigMap costs more (server CPU on every
 * write and watch event) than the bytes it saves. Watches are read here too
 * (client-node's `Watch` asks for gzip and ends after 30 s of quiet).
 */
import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { delimiter } from 'node:path';
import { Agent, request as send, type Dispatcher } from 'undici';
import { InvalidOptionError } from '../errors.ts';
import { currentDeadline } from './call-deadline.ts';
import {
  KubeApiError,
  KubeConnectionError,
  NOT_SENT,
  type ConnectionFailure,
  resourceOf,
  type DeletePreconditions,
  type JsonPatchOp,
  type KubeApi,
  type KubeObject,
  type ObjectKind,
  type ObjectList,
  type ObjectRef,
  type PatchOptions,
  type WatchEvent,
  type WatchHandle,
  type WatchOptions,
} from './port.ts';
import { TokenFile, tokenFileOf } from './token-file.ts';

/** Options of {@link createClientNodeApi}. */
export interface ClientNodeApiOptions {
  /**
   * Abort a request that has not answered after this many milliseconds
   * (default 30000). A request made inside a call with a budget (see
   * `retry.maxElapsedMs`) is also cut when the budget runs out. The connection
   * is checked with an HTTP/2 PING every third of this (between 1 and 10 s), so
   * a connection that went silent is dropped within two such intervals, the
   * watch's included.
   */
  requestTimeoutMs?: number;
}

/** The PING interval for a request timeout: a third of it, from 1 s to 10 s. */
export function pingIntervalFor(requestTimeoutMs: number): number {
  return Math.round(Math.min(Math.max(requestTimeoutMs / 3, 1_000), 10_000));
}

/**
 * Certificate verification failures (OpenSSL's names, as Node reports them, and
 * Node's host name check), with what kubectl (Go's x509) would say.
 */
const UNTRUSTED: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'x509: certificate signed by unknown authority',
  UNABLE_TO_GET_ISSUER_CERT: 'x509: certificate signed by unknown authority',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'x509: certificate signed by unknown authority',
  SELF_SIGNED_CERT_IN_CHAIN: 'x509: certificate signed by unknown authority (a self-signed certificate in its chain)',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'x509: certificate signed by unknown authority (the certificate is self-signed)',
  CERT_UNTRUSTED: 'x509: certificate signed by unknown authority',
  CERT_SIGNATURE_FAILURE: 'x509: certificate signature is invalid',
  CERT_HAS_EXPIRED: 'x509: certificate has expired',
  CERT_NOT_YET_VALID: 'x509: certificate is not yet valid',
  CERT_REVOKED: 'x509: certificate has been revoked',
  ERR_TLS_CERT_ALTNAME_INVALID: 'x509: certificate is not valid for this server name',
};

/** The first `code` along an error's cause chain, and the error that has it. */
function codeOf(error: unknown): { code: string | undefined; carrier: unknown } {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return { code, carrier: e };
  }
  return { code: undefined, carrier: error };
}

/** What kind of transport failure an error from undici is, and whether it condemns the connection it happened on. */
function classify(error: unknown): { failure: ConnectionFailure; code: string | undefined; detail: string; brokenConnection: boolean } {
  const { code, carrier } = codeOf(error);
  // Node appends a hint to run with --use-system-ca; the kubeconfig names the CA to trust, as for kubectl.
  const detail = (carrier instanceof Error ? carrier.message : String(carrier)).replace(/;\s*if the root CA is installed locally.*$/s, '');
  const name = error instanceof Error ? error.name : '';
  if (
    name === 'TimeoutError' ||
    name === 'AbortError' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'UND_ERR_CONNECT_TIMEOUT'
  ) {
    // One slow answer does not prove the connection dead; it is replaced gently (see retire()).
    return { failure: 'timeout', code, detail, brokenConnection: false };
  }
  if (code !== undefined && code in UNTRUSTED) return { failure: 'untrusted', code, detail: `${UNTRUSTED[code]}: ${detail}`, brokenConnection: true };
  // A stream reset by the server leaves the connection usable; anything else (a reset, a damaged TLS record,
  // a destroyed HTTP/2 session) leaves it useless for every call on it.
  return { failure: 'connection', code, detail, brokenConnection: code !== 'ERR_HTTP2_STREAM_ERROR' };
}

/** Seconds of a `Retry-After` header (delay-seconds or an HTTP date), if valid. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(text)) return Number(text);
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}

const JSON_PATCH = 'application/json-patch+json';
/** How long the server keeps one watch request open before ending it (the cache then resumes it). */
const WATCH_SECONDS = 240;
const MERGE_PATCH = 'application/merge-patch+json';
const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json';

function collectionPath(kind: ObjectKind, namespace: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/${resourceOf(kind)}`;
}

/** The media type of a patch answer: the object, or only its metadata. */
function acceptFor(options: PatchOptions | undefined): string {
  return options?.metadataOnly ? 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1' : 'application/json';
}

function objectPath(ref: ObjectRef): string {
  return `${collectionPath(ref.kind, ref.namespace)}/${encodeURIComponent(ref.name)}`;
}

/** Turns a non-2xx answer into a {@link KubeApiError}, keeping the server's Status fields and its Retry-After. */
function toKubeApiError(status: number, text: string, headers: Dispatcher.ResponseData['headers']): KubeApiError {
  let body: { reason?: string; message?: string; details?: KubeApiError['details'] } | undefined;
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    body = undefined;
  }
  const message = body?.message ?? (text.trim().slice(0, 300) || `HTTP ${status}`);
  return new KubeApiError(status, body?.reason, message, body?.details, parseRetryAfter(headers['retry-after']));
}

/**
 * The options client-node gave one of its dispatchers (its TLS material and
 * keep-alive settings), read through undici's `options` symbol. Undefined when
 * they cannot be compared (a custom connector function, an unknown dispatcher).
 */
function dispatcherOptions(dispatcher: object): object | undefined {
  const symbol = Object.getOwnPropertySymbols(dispatcher).find((s) => s.description === 'options');
  const options = symbol === undefined ? undefined : (dispatcher as Record<symbol, unknown>)[symbol];
  if (!options || typeof options !== 'object') return undefined;
  if (typeof (options as { connect?: unknown }).connect === 'function') return undefined;
  return options;
}

/**
 * True when two dispatcher option trees are the same TLS setup: equal strings,
 * numbers and booleans, byte-equal buffers (client-node decodes the CA,
 * certificate and key afresh for every request), the same keys. Functions are
 * never equal (a connector cannot be compared).
 */
export function sameTlsSetup(a: unknown, b: unknown): boolean {
  if (a === b) return typeof a !== 'function';
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.compare(a, b) === 0;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => sameTlsSetup(item, b[i]));
  }
  if (!a || !b || typeof a !== 'object' || typeof b !== 'object' || a.constructor !== b.constructor) return false;
  const keysA = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const keysB = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return keysA.length === keysB.length && keysA.every((k) => sameTlsSetup((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** Creates the port to a real API server from a client-node `KubeConfig`. */
export function createClientNodeApi(kubeConfig: KubeConfig, options: ClientNodeApiOptions = {}): KubeApi {
  const timeoutMs = options.requestTimeoutMs ?? 30_000;
  const pingInterval = pingIntervalFor(timeoutMs);
  const server = (): string => {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('The kubeconfig has no current cluster; set a current context (kubectl config use-context).');
    return cluster.server.replace(/\/+$/, '');
  };

  /**
   * client-node builds a new undici Agent, hence a new TLS connection, for every
   * request (measured: a TLS handshake per call cost about 1 ms of client CPU per
   * write, and as much of the API server's). Its authentication is still applied
   * per request (tokens refresh); one Agent of ours, built from its TLS setup
   * with a PING interval, is kept while that setup is the same, so connections
   * are reused, and until a call finds its connection broken or timed out (see
   * retire()): the next call then opens a new one.
   */
  let shared: { options: object; dispatcher: Dispatcher } | undefined;
  let tokenFile: TokenFile | undefined;
  async function authenticated(url: string, method: HttpMethod): Promise<{ headers: Record<string, string>; dispatcher: Dispatcher | undefined }> {
    const ctx = new RequestContext(url, method);
    await kubeConfig.applySecurityAuthentication(ctx);
    // A pod's token file: the token it holds now, not the one client-node read up to a minute ago (see token-file.ts).
    const file = tokenFileOf(kubeConfig.getCurrentUser());
    if (file !== undefined) {
      if (tokenFile?.path !== file) tokenFile = new TokenFile(file);
      const token = tokenFile.current();
      if (token !== undefined) ctx.setHeaderParam('Authorization', `Bearer ${token}`);
    }
    const fresh = ctx.getDispatcher() as Dispatcher | undefined;
    // No TLS setup at all (plain http, or undici's defaults): compare as an empty one.
    const options = fresh ? dispatcherOptions(fresh) : {};
    if (options === undefined) return { headers: ctx.getHeaders(), dispatcher: fresh };
    if (shared === undefined || !sameTlsSetup(shared.options, options)) {
      // The TLS setup changed (a rotated client certificate, another context), or the connection was dropped: new connections from now on.
      const previous = shared?.dispatcher;
      shared = { options, dispatcher: new Agent({ ...(options as Agent.Options), h2Options: { pingInterval } }) };
      void previous?.close().catch(() => undefined);
    }
    return { headers: ctx.getHeaders(), dispatcher: shared.dispatcher };
  }

  /**
   * Stops using a dispatcher whose connection failed: the next call opens a new
   * one. A broken connection is destroyed (every call still on it has failed or
   * will); after a timeout it is only closed: calls still on it may finish, and
   * a dead one is found by its PINGs or their own timeouts.
   */
  function retire(dispatcher: Dispatcher | undefined, broken: boolean): void {
    if (dispatcher === undefined || shared?.dispatcher !== dispatcher) return;
    shared = undefined;
    void (broken ? dispatcher.destroy() : dispatcher.close()).catch(() => undefined);
  }

  /** Turns a transport failure into a {@link KubeConnectionError} naming the server, and drops the connection it broke. */
  function connectionFailure(error: unknown, dispatcher: Dispatcher | undefined, limitMs: number): KubeConnectionError {
    const { failure, code, detail, brokenConnection } = classify(error);
    retire(dispatcher, brokenConnection);
    const message = failure === 'timeout' ? (limitMs > 0 ? `no answer within ${limitMs} ms` : detail) : detail;
    return new KubeConnectionError(failure, server(), kubeConfig.getCurrentContext() || undefined, message, code, error);
  }

  /** This request's time limit: the request timeout, cut at the deadline of the call in progress (0 or less: none left). */
  function attemptLimit(): number {
    const deadline = currentDeadline();
    return deadline === undefined ? timeoutMs : Math.min(timeoutMs, deadline - Date.now());
  }

  /**
   * One call, with undici's `request()` rather than `fetch()` (measured: about
   * half the client CPU per call; no WHATWG streams or Request objects).
   * The time limit bounds the whole call, connecting and reading included.
   */
  async function request<T>(method: HttpMethod, path: string, body?: unknown, contentType?: string, accept = 'application/json'): Promise<T> {
    const url = server() + path;
    const auth = await authenticated(url, method);
    const headers: Record<string, string> = { ...auth.headers, accept, 'accept-encoding': 'identity' };
    if (body !== undefined) headers['content-type'] = contentType ?? 'application/json';
    const limit = attemptLimit();
    if (limit <= 0) {
      // Nothing is sent when the call's budget is spent (e.g. it waited behind other work).
      const spent = "no time was left of the call's budget (retry.maxElapsedMs) to send this request";
      throw new KubeConnectionError('timeout', server(), kubeConfig.getCurrentContext() || undefined, spent, NOT_SENT, new DOMException(spent, 'TimeoutError'));
    }
    let response: Dispatcher.ResponseData;
    let text: string;
    // A timer that keeps the process alive (AbortSignal.timeout's does not): a request stuck on a
    // connection that died without a word must still end the call, even in a process with nothing else to do.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new DOMException(`no answer within ${limit} ms`, 'TimeoutError')), limit);
    try {
      response = await send(url, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ...(auth.dispatcher ? { dispatcher: auth.dispatcher } : {}),
        signal: controller.signal,
      });
      text = await response.body.text();
    } catch (error) {
      throw connectionFailure(error, auth.dispatcher, limit);
    } finally {
      clearTimeout(timer);
    }
    if (response.statusCode < 200 || response.statusCode > 299) throw toKubeApiError(response.statusCode, text, response.headers);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  return {
    get: (ref) => request<KubeObject>(HttpMethod.GET, objectPath(ref)),

    async list(kind, namespace, selectors, options): Promise<ObjectList> {
      const query = new URLSearchParams();
      if (selectors.labelSelector) query.set('labelSelector', selectors.labelSelector);
      if (selectors.fieldSelector) query.set('fieldSelector', selectors.fieldSelector);
      const list = await request<{ items: KubeObject[] | null; metadata: { resourceVersion: string } }>(
        HttpMethod.GET,
        `${namespace === '' ? `/api/v1/${resourceOf(kind)}` : collectionPath(kind, namespace)}?${query}`,
        undefined,
        undefined,
        options?.metadataOnly ? 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1' : 'application/json',
      );
      return { items: list.items ?? [], resourceVersion: list.metadata.resourceVersion };
    },

    create: (kind, namespace, body) => request<KubeObject>(HttpMethod.POST, collectionPath(kind, namespace), { apiVersion: 'v1', kind, ...body }),

    mergePatch: (ref, patch, options) => request<KubeObject>(HttpMethod.PATCH, objectPath(ref), patch, MERGE_PATCH, acceptFor(options)),

    strategicMergePatch: (ref, patch, options) => request<KubeObject>(HttpMethod.PATCH, objectPath(ref), patch, STRATEGIC_MERGE_PATCH, acceptFor(options)),

    jsonPatch: (ref, ops: JsonPatchOp[], options) => request<KubeObject>(HttpMethod.PATCH, objectPath(ref), ops, JSON_PATCH, acceptFor(options)),

    async delete(ref, preconditions?: DeletePreconditions): Promise<void> {
      const body = preconditions ? { apiVersion: 'v1', kind: 'DeleteOptions', preconditions } : undefined;
      await request(HttpMethod.DELETE, objectPath(ref), body);
    },

    async watch(kind, namespace, watchOptions: WatchOptions): Promise<WatchHandle> {
      const query = new URLSearchParams({ watch: 'true', allowWatchBookmarks: 'true', timeoutSeconds: String(WATCH_SECONDS) });
      query.set('resourceVersion', watchOptions.resourceVersion);
      if (watchOptions.labelSelector) query.set('labelSelector', watchOptions.labelSelector);
      if (watchOptions.fieldSelector) query.set('fieldSelector', watchOptions.fieldSelector);
      const url = `${server()}${collectionPath(kind, namespace)}?${query}`;
      const { headers, dispatcher } = await authenticated(url, HttpMethod.GET);
      const controller = new AbortController();
      // It must connect and answer in time; after that, quiet is normal (the idle timer below judges silence).
      const connectTimer = setTimeout(() => controller.abort(new DOMException('watch did not connect in time', 'TimeoutError')), timeoutMs);
      let response: Dispatcher.ResponseData;
      try {
        response = await send(url, {
          method: 'GET',
          headers: { ...headers, accept: 'application/json', 'accept-encoding': 'identity' },
          ...(dispatcher ? { dispatcher } : {}),
          signal: controller.signal,
          bodyTimeout: 0,
        });
        if (response.statusCode !== 200) throw toKubeApiError(response.statusCode, await response.body.text(), response.headers);
      } catch (error) {
        throw error instanceof KubeApiError ? error : connectionFailure(error, dispatcher, timeoutMs);
      } finally {
        clearTimeout(connectTimer);
      }

      let stopped = false;
      let closed = false;
      const close = (error?: unknown): void => {
        clearTimeout(idleTimer);
        if (stopped || closed) return;
        closed = true;
        controller.abort();
        watchOptions.onClose(error);
      };
      // The server ends the watch after WATCH_SECONDS; silence well past that means a dead stream. (A dead
      // connection is found sooner: unanswered PINGs make undici destroy it, which fails this stream.)
      let idleTimer: NodeJS.Timeout | undefined;
      const armIdle = (): void => {
        clearTimeout(idleTimer);
        idleTimer = setTimeout(
          () => close(connectionFailure(new DOMException('watch went silent', 'TimeoutError'), dispatcher, (WATCH_SECONDS + 30) * 1000)),
          (WATCH_SECONDS + 30) * 1000,
        );
      };
      armIdle();
      void (async () => {
        const decoder = new TextDecoder();
        let buffer = '';
        try {
          for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
            armIdle();
            buffer += decoder.decode(chunk, { stream: true });
            let newline: number;
            // biome-ignore lint/suspicious/noAssignInExpressions: one line of the stream per turn
            while ((newline = buffer.indexOf('\n')) >= 0) {
              const line = buffer.slice(0, newline);
              buffer = buffer.slice(newline + 1);
              if (!line.trim() || stopped || closed) continue;
              const event = JSON.parse(line) as { type: string; object: KubeObject & { code?: number; reason?: string; message?: string } };
              if (event.type === 'ERROR') {
                close(new KubeApiError(event.object.code ?? 500, event.object.reason, event.object.message ?? 'watch error'));
                return;
              }
              watchOptions.onEvent({ type: event.type as WatchEvent['type'], object: event.object });
            }
          }
          close();
        } catch (error) {
          close(stopped || closed ? undefined : connectionFailure(error, dispatcher, timeoutMs));
        }
      })();
      return {
        stop() {
          stopped = true;
          clearTimeout(idleTimer);
          controller.abort();
        },
      };
    },
  };
}

/** Loads the default kubeconfig: KUBECONFIG, ~/.kube/config, then the in-cluster service account. */
export function loadDefaultKubeConfig(): KubeConfig {
  return loadKubeConfig();
}

/** Options of {@link loadKubeConfig}. */
export interface LoadKubeConfigOptions {
  /** The context to use instead of the kubeconfig's current context (kubectl's `--context`). */
  context?: string;
}

/**
 * Loads kubeconfig files: `paths` as in KUBECONFIG (several joined with the
 * platform's path delimiter, merged the way kubectl merges them; the first
 * file's current context wins); without `paths`, the default chain
 * (KUBECONFIG, ~/.kube/config, the in-cluster service account). With
 * `options.context`, that context becomes the current one.
 *
 * Throws {@link InvalidOptionError} (option `kubeconfig` or `context`) when a
 * file cannot be read or parsed, the context is not in the kubeconfig, or no
 * current context names a cluster. Messages name files and contexts, never
 * the files' contents (they hold credentials).
 */
export function loadKubeConfig(paths?: string, options: LoadKubeConfigOptions = {}): KubeConfig {
  const kubeConfig = new KubeConfig();
  const files = (paths ?? '').split(delimiter).filter(Boolean);
  let file: string | undefined;
  try {
    if (files.length === 0) {
      kubeConfig.loadFromDefault();
    } else {
      file = files[0]!;
      kubeConfig.loadFromFile(file);
      for (file of files.slice(1)) {
        const more = new KubeConfig();
        more.loadFromFile(file);
        kubeConfig.mergeConfig(more, true);
      }
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? 'it is not a valid kubeconfig file');
    const which = file === undefined ? 'the kubeconfig ($KUBECONFIG or ~/.kube/config)' : `kubeconfig ${JSON.stringify(file)}`;
    throw new InvalidOptionError('kubeconfig', `Cannot load ${which}: ${why}. Point KUBECONFIG (or the kubeconfig option) at a valid kubeconfig file.`);
  }
  if (options.context !== undefined) {
    if (!kubeConfig.getContextObject(options.context)) {
      const known = kubeConfig.getContexts().map((c) => c.name);
      throw new InvalidOptionError(
        'context',
        `Context ${JSON.stringify(options.context)} is not in the kubeconfig; ${known.length ? `it has: ${known.join(', ')}` : 'it has no contexts'}.`,
      );
    }
    kubeConfig.setCurrentContext(options.context);
  }
  if (!kubeConfig.getCurrentCluster()) {
    throw new InvalidOptionError(
      'context',
      `The kubeconfig's current context ${JSON.stringify(kubeConfig.getCurrentContext())} names no cluster. Choose a context (kubectl config use-context NAME).`,
    );
  }
  return kubeConfig;
}
