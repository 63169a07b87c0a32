/**
 * What `createKV` and `listBuckets` share about their options: the checks of
 * `namespace` and `app`, and how the port to the API server is chosen.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { InvalidOptionError } from './errors.ts';
import { createClientNodeApi, loadDefaultKubeConfig } from './kube/client-node-api.ts';
import { resolveNamespace } from './kube/namespace.ts';
import { dns1123SubdomainError, labelValueError } from './kube/object-rules.ts';
import type { KubeApi } from './kube/port.ts';

/** Throws {@link InvalidOptionError} unless `namespace` is absent or a valid namespace name. */
export function checkNamespaceOption(namespace: unknown): void {
  if (namespace === undefined) return;
  const error = typeof namespace === 'string' ? dns1123SubdomainError(namespace) : 'must be a string';
  if (error || (namespace as string).length > 63 || (namespace as string).includes('.')) {
    throw new InvalidOptionError('namespace', `Invalid namespace ${JSON.stringify(namespace)}: use 1-63 lowercase letters, digits or "-".`);
  }
}

/** Throws {@link InvalidOptionError} unless `app` is a non-empty label value. */
export function checkAppOption(app: unknown): void {
  const error = typeof app === 'string' && app !== '' ? labelValueError(app) : 'must be a non-empty string';
  if (error) throw new InvalidOptionError('app', `Invalid app ${JSON.stringify(app)}: ${error}.`);
}

/**
 * The port to use and the namespace it resolves to: `api` when given, else the
 * client-node port over `kubeConfig` (default: loaded as kubectl does, now).
 */
export function connect(options: { api?: KubeApi | undefined; kubeConfig?: KubeConfig | undefined; namespace?: string | undefined }): { api: KubeApi; namespace: string } {
  let { api, kubeConfig } = options;
  if (!api) {
    kubeConfig ??= loadDefaultKubeConfig();
    api = createClientNodeApi(kubeConfig);
  }
  return { api, namespace: resolveNamespace(options.namespace, kubeConfig) };
}
