/**
 * Which namespace a bucket lives in when the caller does not say.
 */
import { readFileSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';

/** Where Kubernetes mounts the pod's namespace. */
export const IN_CLUSTER_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/**
 * The namespace to use: the explicit one; else the pod's own (in-cluster);
 * else the kubeconfig current context's; else "default".
 */
export function resolveNamespace(explicit: string | undefined, kubeConfig: KubeConfig | undefined, inClusterFile = IN_CLUSTER_NAMESPACE_FILE): string {
  if (explicit) return explicit;
  try {
    const own = readFileSync(inClusterFile, 'utf8').trim();
    if (own) return own;
  } catch {
    // not running in a pod
  }
  if (kubeConfig) {
    const context = kubeConfig.getContextObject(kubeConfig.getCurrentContext());
    if (context?.namespace) return context.namespace;
  }
  return 'default';
}
