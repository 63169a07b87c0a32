/**
 * How `createKV` and `listBuckets` reach the API server: the port they were
 * given, or the client-node port over a kubeconfig (loaded as kubectl loads it,
 * on first use), and the namespace that resolves to.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { createClientNodeApi, loadKubeConfig } from './kube/client-node-api.ts';
import { resolveNamespace } from './kube/namespace.ts';
import type { KubeApi } from './kube/port.ts';

/**
 * The port to use and the namespace it resolves to: `api` when given, else the
 * client-node port over `kubeConfig` (default: loaded as kubectl does, now).
 */
export function connect(options: { api?: KubeApi | undefined; kubeConfig?: KubeConfig | undefined; namespace?: string | undefined }): { api: KubeApi; namespace: string } {
  let { api, kubeConfig } = options;
  if (!api) {
    kubeConfig ??= loadKubeConfig();
    api = createClientNodeApi(kubeConfig);
  }
  return { api, namespace: resolveNamespace(options.namespace, kubeConfig) };
}
