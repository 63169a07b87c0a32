import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';
import { k8sVersions } from './scripts/cluster.mjs';

// Tests import the packages' TypeScript sources through the "source" export condition.
const conditions = ['source', 'node', 'default'];

/**
 * The suites that run against every Kubernetes release of the version matrix: those whose outcome
 * depends on how the API server answers (patch semantics, watch, metadata-only answers, Status
 * errors, authentication). The CLI, the drivers and the e2e apps reach the server only through the
 * calls these already cover, so they run against the default release only; so does elastic.test.ts,
 * whose 4-process load (over a minute per release) uses the server as multi-process.test.ts does,
 * while the behaviour suite here splits elastic buckets on every release.
 */
const MATRIX_SUITES = [
  'test/integration/core.test.ts', // the behaviour suite: plain and sharded buckets, watch cache
  'test/integration/port-parity.test.ts', // every server answer the in-memory port imitates
  'test/integration/multi-process.test.ts', // concurrent writers: the server's patch retry loop
  'test/integration/secret-bucket.test.ts', // strategic merge patches of a Secret's data
  'test/integration/rbac.test.ts', // Forbidden answers
  'test/integration/versions.test.ts', // GET /version, watch bookmarks
  'test/integration/identity.test.ts', // the pod's service-account token: TokenRequest, bound tokens
  'test/integration/auth.test.ts', // exec plugins, client certificates
];

/**
 * K8S_KV_VERSIONS=1.33,1.37 (or "all": every release test/cluster builds besides the default) adds
 * one project per release, named k8s-<minor>, each with its own API server (`pnpm test:versions`).
 */
function matrixProjects(): TestProjectInlineConfiguration[] {
  const wanted = (process.env.K8S_KV_VERSIONS ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
  const releases = k8sVersions().filter((v) => !v.isDefault && (wanted.includes('all') || wanted.some((w) => [v.minor, `v${v.minor}`, v.version].includes(w))));
  return releases.map((release) => ({
    extends: true,
    test: {
      name: `k8s-${release.minor}`,
      include: MATRIX_SUITES,
      globalSetup: ['test/setup/global-setup.ts'],
      provide: { k8s: release.minor },
      testTimeout: 120_000,
      hookTimeout: 180_000,
    },
  }));
}

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['packages/*/test/**/*.test.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          globalSetup: ['test/setup/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        extends: true,
        test: {
          // Restarts the API server, so it runs alone: its own group (groupOrder 1) never
          // overlaps the others. Vitest runs groups in order, but with one worker (two
          // cores) it puts the other projects' files in a sequential group of their own
          // that runs after every numbered group: faults then runs first.
          name: 'faults',
          include: ['test/faults/**/*.test.ts'],
          globalSetup: ['test/setup/global-setup.ts'],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
          testTimeout: 600_000,
          hookTimeout: 180_000,
        },
      },
      ...matrixProjects(),
    ],
  },
});
