// vitest globalSetup: makes sure the test cluster (a real kube-apiserver with
// an embedded etcd, see test/cluster/README.md) runs before any test file, and
// tells the tests where its admin kubeconfig is:
//   - inject('kubeconfig') in tests (project.provide), and
//   - process.env.K8S_KV_TEST_KUBECONFIG (inherited by the test workers), for
//     the default release only.
// A project that provides `k8s` (the version matrix in vitest.config.ts) gets
// the server of that Kubernetes release, with its own state directory and ports.
// The first run builds the Go binary (several minutes); later runs reuse a
// running cluster (started by `pnpm cluster:up`) or start one in seconds.
// Teardown stops the cluster only if this setup started it.
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Path of the admin kubeconfig of the test cluster. */
    kubeconfig: string;
    /** The Kubernetes release the test cluster runs (what GET /version must report), e.g. v1.36.3. */
    k8sVersion: string;
    /** The release a project asks for (1.33, ...); absent: the one pinned in test/cluster/go.mod. */
    k8s?: string;
  }
}

/** The parts of scripts/cluster.mjs used here (a plain .mjs with no types). */
interface ClusterScript {
  ensureCluster(opts?: { k8s?: string; log?: (msg: string) => void }): Promise<{
    version: string;
    kubeconfig: string;
    server: string;
    pid: number;
    started: boolean;
    built: boolean;
    buildMs: number;
    startMs: number;
  }>;
  stopCluster(opts?: { k8s?: string; log?: (msg: string) => void }): Promise<{ stopped: boolean; pid?: number }>;
}

const scriptUrl = new URL('../../scripts/cluster.mjs', import.meta.url).href;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cluster = (await import(scriptUrl)) as ClusterScript;
  const { k8s } = project.getProvidedContext();
  const info = await cluster.ensureCluster({ k8s });
  if (!k8s) process.env.K8S_KV_TEST_KUBECONFIG = info.kubeconfig;
  project.provide('kubeconfig', info.kubeconfig);
  project.provide('k8sVersion', info.version);

  return async () => {
    // Keep a cluster that someone else started (pnpm cluster:up, or another
    // run) running; stop the one this run started.
    if (info.started && !process.env.K8S_KV_KEEP_CLUSTER) {
      await cluster.stopCluster({ k8s });
    }
  };
}
