// Helpers for integration tests against the test cluster (test/cluster).
// The cluster is started by ./global-setup.ts; these helpers find it through
// inject('kubeconfig'), K8S_KV_TEST_KUBECONFIG, or the default .cluster/kubeconfig.
//
// Test files run in parallel: each test should work in its own namespace from
// createTestNamespace(). Users: admin (system:masters), alice and bob (no rights
// until grantRole()).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  ApiException,
  AuthorizationV1Api,
  CoreV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
  type RbacV1Subject,
  type V1PolicyRule,
} from '@kubernetes/client-node';
import { inject } from 'vitest';

export type TestUser = 'admin' | 'alice' | 'bob';

const DEFAULT_KUBECONFIG = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '.cluster', 'kubeconfig');

/** Path of the kubeconfig of a test user (admin by default). */
export function kubeconfigPath(user: TestUser = 'admin'): string {
  let admin: string | undefined;
  try {
    admin = inject('kubeconfig');
  } catch {
    // not inside a vitest worker
  }
  admin ||= process.env.K8S_KV_TEST_KUBECONFIG || DEFAULT_KUBECONFIG;
  const path = user === 'admin' ? admin : join(dirname(admin), `${basename(admin)}-${user}`);
  if (!existsSync(path)) {
    throw new Error(`no kubeconfig at ${path}: start the test cluster (node scripts/cluster.mjs up) or run the tests with test/setup/global-setup.ts`);
  }
  return path;
}

function loadKubeConfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

/** A KubeConfig for the cluster administrator (group system:masters). */
export function adminKubeConfig(): KubeConfig {
  return loadKubeConfig(kubeconfigPath('admin'));
}

/** A KubeConfig for alice or bob, who have no rights until grantRole(). */
export function userKubeConfig(user: 'alice' | 'bob'): KubeConfig {
  return loadKubeConfig(kubeconfigPath(user));
}

function isNotFound(err: unknown): boolean {
  return err instanceof ApiException && err.code === 404;
}

export interface TestNamespace {
  name: string;
  /** Deletes the namespace (and, through the namespace controller, everything in it). Idempotent. */
  cleanup(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A DNS-1123 label: lowercase alphanumerics and '-', at most 63 characters. */
function namespaceName(prefix: string): string {
  const clean =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 40)
      .replace(/-+$/, '') || 'test';
  return `${clean}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/**
 * Creates a fresh, uniquely named namespace (label k8s-kv.dev/test=true).
 * Use in a test: `const ns = await createTestNamespace('put'); onTestFinished(ns.cleanup)`
 * or `await using ns = await createTestNamespace('put')`.
 */
export async function createTestNamespace(prefix = 'test'): Promise<TestNamespace> {
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const name = namespaceName(prefix);
  await core.createNamespace({
    body: { metadata: { name, labels: { 'k8s-kv.dev/test': 'true' } } },
  });
  let done: Promise<void> | undefined;
  const cleanup = () =>
    (done ??= core.deleteNamespace({ name }).then(
      () => undefined,
      (err: unknown) => {
        if (!isNotFound(err)) throw err;
      },
    ));
  return { name, cleanup, [Symbol.asyncDispose]: cleanup };
}

/**
 * Gives a user the rules in a namespace (a Role plus a RoleBinding, both named
 * after the user and a random suffix), then waits until the authorizer applies
 * them: RBAC is read from an informer cache, so a grant takes a moment.
 * A service account's user name (system:serviceaccount:<namespace>:<name>) is
 * bound as that ServiceAccount. Returns the Role's name.
 */
export async function grantRole(namespace: string, user: string, rules: V1PolicyRule[]): Promise<string> {
  const kc = adminKubeConfig();
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  const name = `${user.toLowerCase().replace(/[^a-z0-9-]+/g, '-')}-${randomBytes(4).toString('hex')}`;
  await rbac.createNamespacedRole({ namespace, body: { metadata: { name }, rules } });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [subjectOf(user)],
    },
  });
  await waitUntilAllowed(kc, namespace, user, rules);
  return name;
}

/** The RBAC subject of a user name: a ServiceAccount for system:serviceaccount:<namespace>:<name>, else a User. */
function subjectOf(user: string): RbacV1Subject {
  const serviceAccount = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(user);
  return serviceAccount
    ? { kind: 'ServiceAccount', namespace: serviceAccount[1]!, name: serviceAccount[2]! }
    : { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user };
}

/** Polls SubjectAccessReviews until every verb/resource of the rules is allowed. */
async function waitUntilAllowed(kc: KubeConfig, namespace: string, user: string, rules: V1PolicyRule[]) {
  const authz = kc.makeApiClient(AuthorizationV1Api);
  const checks = rules.flatMap((rule) =>
    (rule.verbs ?? []).flatMap((verb) =>
      (rule.resources ?? []).map((resource) => ({
        verb,
        resource,
        group: rule.apiGroups?.[0] === '*' ? '' : (rule.apiGroups?.[0] ?? ''),
        name: rule.resourceNames?.[0],
      })),
    ),
  );
  const deadline = Date.now() + 10_000;
  for (const check of checks) {
    if (check.verb === '*' || check.resource === '*') continue;
    for (;;) {
      const review = await authz.createSubjectAccessReview({
        body: {
          spec: {
            user,
            resourceAttributes: {
              namespace,
              verb: check.verb,
              group: check.group,
              resource: check.resource.split('/')[0],
              subresource: check.resource.split('/')[1],
              name: check.name,
            },
          },
        },
      });
      if (review.status?.allowed) break;
      if (Date.now() > deadline) {
        throw new Error(`grantRole: ${user} still may not ${check.verb} ${check.resource} in ${namespace} after 10s`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** The parts of scripts/cluster.mjs that fault-injection tests use. */
interface ClusterScript {
  restartCluster(opts?: {
    k8s?: string;
    signal?: 'SIGTERM' | 'SIGKILL';
    downMs?: number;
    log?: (msg: string) => void;
  }): Promise<{ server: string; pid: number; startMs: number; downtimeMs: number }>;
  clusterStatus(opts?: { k8s?: string }): Promise<{ running: boolean; ready: boolean; pid?: number; rssKiB?: number }>;
}

/** The release this project's server was asked for (the version matrix), or undefined for the default. */
function requestedRelease(): string | undefined {
  try {
    return inject('k8s');
  } catch {
    return undefined; // not inside a vitest worker
  }
}

/**
 * The test cluster's state directory (where its kubeconfigs are): pki/ holds
 * its CA (ca.crt, ca.key) and service-account signing key (sa.key), bin/ the
 * test-apiserver binary.
 */
export function clusterStateDir(): string {
  return dirname(kubeconfigPath());
}

const scriptUrl = new URL('../../scripts/cluster.mjs', import.meta.url).href;

/**
 * Restarts the API server (and etcd) on the same port with the same data.
 * signal SIGKILL simulates a crash; downMs keeps it down that much longer.
 * It cuts every test using the cluster: run such tests alone (a vitest project
 * with fileParallelism: false, after the parallel ones), never beside others.
 */
export async function restartTestCluster(opts?: { signal?: 'SIGTERM' | 'SIGKILL'; downMs?: number }) {
  const cluster = (await import(scriptUrl)) as ClusterScript;
  return cluster.restartCluster({ ...opts, k8s: requestedRelease() });
}
