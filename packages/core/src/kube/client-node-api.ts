/**
 * The real {@link KubeApi}: HTTP calls to the API server, authenticated and
 * TLS-configured by @kubernetes/client-node's `KubeConfig` (which handles
 * kubeconfig files, exec plugins, token refresh and in-cluster service
 * accounts), sent with undici (the HTTP client client-node itself uses), and
 * watches through client-node's `Watch`.
 */
import { HttpMethod, KubeConfig, RequestContext, Watch } from '@kubernetes/client-node';
import { fetch } from 'undici';
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
  type WatchHandle,
  type WatchOptions,
} from './port.ts';

/** Options of {@link createClientNodeApi}. */
export interface ClientNodeApiOptions {
  /** Abort a request that has not answered after this many milliseconds (default 30000). */
  requestTimeoutMs?: number;
}

const JSON_PATCH = 'application/json-patch+json';
const MERGE_PATCH = 'application/merge-patch+json';

function collectionPath(kind: ObjectKind, namespace: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/${resourceOf(kind)}`;
}

function objectPath(ref: ObjectRef): string {
  return `${collectionPath(ref.kind, ref.namespace)}/${encodeURIComponent(ref.name)}`;
}

/** Turns a non-2xx answer into a {@link KubeApiError}, keeping the server's Status fields. */
function toKubeApiError(status: number, text: string): KubeApiError {
  let body: { reason?: string; message?: string; details?: KubeApiError['details'] } | undefined;
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    body = undefined;
  }
  const message = body?.message ?? (text.trim().slice(0, 300) || `HTTP ${status}`);
  return new KubeApiError(status, body?.reason, message, body?.details);
}

/** Creates the port to a real API server from a client-node `KubeConfig`. */
export function createClientNodeApi(kubeConfig: KubeConfig, options: ClientNodeApiOptions = {}): KubeApi {
  const timeoutMs = options.requestTimeoutMs ?? 30_000;
  const server = (): string => {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('The kubeconfig has no current cluster; set a current context (kubectl config use-context).');
    return cluster.server.replace(/\/+$/, '');
  };

  async function request<T>(method: HttpMethod, path: string, body?: unknown, contentType?: string): Promise<T> {
    const url = server() + path;
    const ctx = new RequestContext(url, method);
    await kubeConfig.applySecurityAuthentication(ctx);
    const headers: Record<string, string> = { ...ctx.getHeaders(), Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = contentType ?? 'application/json';
    const dispatcher = ctx.getDispatcher();
    const response = await fetch(url, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      ...(dispatcher ? { dispatcher } : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    if (response.status < 200 || response.status > 299) throw toKubeApiError(response.status, text);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  return {
    get: (ref) => request<KubeObject>(HttpMethod.GET, objectPath(ref)),

    async list(kind, namespace, selectors): Promise<ObjectList> {
      const query = new URLSearchParams();
      if (selectors.labelSelector) query.set('labelSelector', selectors.labelSelector);
      if (selectors.fieldSelector) query.set('fieldSelector', selectors.fieldSelector);
      const list = await request<{ items: KubeObject[] | null; metadata: { resourceVersion: string } }>(
        HttpMethod.GET,
        `${collectionPath(kind, namespace)}?${query}`,
      );
      return { items: list.items ?? [], resourceVersion: list.metadata.resourceVersion };
    },

    create: (kind, namespace, body) =>
      request<KubeObject>(HttpMethod.POST, collectionPath(kind, namespace), { apiVersion: 'v1', kind, ...body }),

    mergePatch: (ref, patch) => request<KubeObject>(HttpMethod.PATCH, objectPath(ref), patch, MERGE_PATCH),

    jsonPatch: (ref, ops: JsonPatchOp[]) => request<KubeObject>(HttpMethod.PATCH, objectPath(ref), ops, JSON_PATCH),

    async delete(ref, preconditions?: DeletePreconditions): Promise<void> {
      const body = preconditions ? { apiVersion: 'v1', kind: 'DeleteOptions', preconditions } : undefined;
      await request(HttpMethod.DELETE, objectPath(ref), body);
    },

    async watch(kind, namespace, watchOptions: WatchOptions): Promise<WatchHandle> {
      let stopped = false;
      let closed = false;
      const close = (error?: unknown): void => {
        if (stopped || closed) return;
        closed = true;
        watchOptions.onClose(error);
      };
      const controller = await new Watch(kubeConfig).watch(
        collectionPath(kind, namespace),
        {
          labelSelector: watchOptions.labelSelector,
          fieldSelector: watchOptions.fieldSelector,
          resourceVersion: watchOptions.resourceVersion,
          allowWatchBookmarks: true,
          // End the watch server-side before client-node's 30 s inactivity timer fires.
          timeoutSeconds: 25,
        },
        (type: string, object: unknown) => {
          if (stopped || closed) return;
          if (type === 'ERROR') {
            const status = object as { code?: number; reason?: string; message?: string };
            close(new KubeApiError(status.code ?? 500, status.reason, status.message ?? 'watch error'));
            return;
          }
          watchOptions.onEvent({ type: type as 'ADDED', object: object as KubeObject });
        },
        (error: unknown) => {
          const statusCode = (error as { statusCode?: number } | null)?.statusCode;
          close(statusCode ? new KubeApiError(statusCode, undefined, `watch failed with HTTP ${statusCode}`) : (error ?? undefined));
        },
      );
      return {
        stop() {
          stopped = true;
          controller.abort();
        },
      };
    },
  };
}

/** Loads the default kubeconfig: KUBECONFIG, ~/.kube/config, then the in-cluster service account. */
export function loadDefaultKubeConfig(): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  return kubeConfig;
}
