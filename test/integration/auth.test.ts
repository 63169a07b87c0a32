// The other ways a kubeconfig authenticates, against the real API server: an exec credential plugin
// (as EKS and GKE write kubeconfigs) and client certificates (as kind does), each rotated while the
// store runs.
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AuthenticationV1Api, AuthorizationV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKV, KubeConfig } from '@k8s-kv/core';
import { adminKubeConfig, createTestNamespace, grantRole, type TestNamespace } from '../setup/cluster.ts';
import { clusterEndpoint, createServiceAccount, issueBoundToken, issueClientCertificate, revokeToken } from '../setup/identity.ts';

const PLUGIN = fileURLToPath(new URL('./workers/exec-credential.mjs', import.meta.url));
const RULES = [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] }];
const b64 = (text: string | Buffer): string => Buffer.from(text).toString('base64');

let ns: TestNamespace;
let dir: string;
beforeAll(async () => {
  ns = await createTestNamespace('auth');
  dir = mkdtempSync(join(tmpdir(), 'k8s-kv-auth-'));
});
afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await ns?.cleanup();
});

/** Writes a kubeconfig for the test cluster with this user entry and a context in the test namespace; returns its path. */
function writeKubeconfig(name: string, user: object): string {
  const { server, ca } = clusterEndpoint();
  const path = join(dir, name);
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server: server.href.replace(/\/$/, ''), 'certificate-authority-data': b64(ca) } }],
    users: [{ name, user }],
    contexts: [{ name, context: { cluster: 'test', user: name, namespace: ns.name } }],
    'current-context': name,
  };
  writeFileSync(path, JSON.stringify(config, null, 2)); // JSON is YAML
  return path;
}

function loadKubeConfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

/** Who the API server takes a kubeconfig's user for (SelfSubjectReview). */
async function whoAmI(kc: KubeConfig): Promise<{ username?: string; groups?: string[] }> {
  const review = await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: { spec: {} } as never });
  return review.status?.userInfo ?? {};
}

/** Deletes the RoleBinding of a grantRole() and waits until the authorizer refuses the user. */
async function withdrawRole(user: string, name: string): Promise<void> {
  const kc = adminKubeConfig();
  await kc.makeApiClient(RbacAuthorizationV1Api).deleteNamespacedRoleBinding({ namespace: ns.name, name });
  const authz = kc.makeApiClient(AuthorizationV1Api);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const review = await authz.createSubjectAccessReview({
      body: { spec: { user, resourceAttributes: { namespace: ns.name, verb: 'patch', resource: 'configmaps' } } },
    });
    if (!review.status?.allowed) return;
    if (Date.now() > deadline) throw new Error(`${user} may still patch configmaps 10 s after losing the role`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('an exec credential plugin', () => {
  it('authenticates with the token it prints, and runs again for a new one when the credential expires', async () => {
    const user = await createServiceAccount(ns.name, 'exec-user');
    await grantRole(ns.name, user, RULES);
    const tokenFile = join(dir, 'exec-token');
    const log = join(dir, 'exec-log');
    writeFileSync(log, '');
    const first = await issueBoundToken(ns.name, 'exec-user', 'exec-token-1');
    writeFileSync(tokenFile, first);
    const path = writeKubeconfig('exec', {
      exec: {
        apiVersion: 'client.authentication.k8s.io/v1',
        command: process.execPath,
        args: [PLUGIN],
        env: [
          { name: 'K8S_KV_EXEC_TOKEN_FILE', value: tokenFile },
          { name: 'K8S_KV_EXEC_LOG', value: log },
          { name: 'K8S_KV_EXEC_TTL_MS', value: '3000' },
        ],
        interactiveMode: 'Never',
      },
    });
    const runs = (): string[] => readFileSync(log, 'utf8').split('\n').filter(Boolean);
    // No namespace given: the kubeconfig context's.
    const kv = createKV({ bucket: 'exec', app: 'auth', kubeConfig: loadKubeConfig(path), cache: false });
    try {
      await kv.put('k', 'v1');
      expect(kv.namespace).toBe(ns.name);
      expect(runs().length).toBeGreaterThanOrEqual(1);

      // The plugin now has a new token to give; the old one stops being accepted.
      writeFileSync(tokenFile, await issueBoundToken(ns.name, 'exec-user', 'exec-token-2'));
      await revokeToken(ns.name, 'exec-token-1', first);
      const lastExpiry = Date.parse(runs().at(-1)!);
      await new Promise((r) => setTimeout(r, Math.max(0, lastExpiry - Date.now() + 100)));
      const before = runs().length;
      await kv.put('k', 'v2');
      expect(runs().length).toBeGreaterThan(before);
      expect(await kv.getText('k')).toBe('v2');
    } finally {
      await kv.close();
    }
  });
});

describe('a client certificate', () => {
  it('authenticates from the kubeconfig data, as kind writes it', async () => {
    const { cert, key } = issueClientCertificate('carol', ['k8s-kv:writers']);
    await grantRole(ns.name, 'carol', RULES);
    const kc = loadKubeConfig(writeKubeconfig('kind', { 'client-certificate-data': b64(cert), 'client-key-data': b64(key) }));
    expect(await whoAmI(kc)).toMatchObject({ username: 'carol', groups: expect.arrayContaining(['k8s-kv:writers']) });
    const kv = createKV({ bucket: 'cert', app: 'auth', kubeConfig: kc });
    try {
      await kv.put('k', 'v');
      expect(await kv.getText('k')).toBe('v');
      expect(await kv.keys()).toEqual(['k']);
    } finally {
      await kv.close();
    }
  });

  it('picks up a rotated certificate from the files the kubeconfig names, without a restart', async () => {
    // One PEM file with certificate and key, named by client-certificate and client-key (as the
    // kubelet's kubelet-client-current.pem), replaced as a whole when the certificate is renewed.
    const pem = join(dir, 'client.pem');
    const write = (identity: { cert: string; key: string }): void => {
      writeFileSync(`${pem}.tmp`, identity.cert + identity.key);
      renameSync(`${pem}.tmp`, pem);
    };
    write(issueClientCertificate('erin'));
    const erinsRole = await grantRole(ns.name, 'erin', RULES);
    await grantRole(ns.name, 'frank', RULES);
    const kv = createKV({
      bucket: 'rotated',
      app: 'auth',
      kubeConfig: loadKubeConfig(writeKubeconfig('files', { 'client-certificate': pem, 'client-key': pem })),
    });
    try {
      await kv.put('by', 'erin');
      // The certificate is renewed, for another identity; erin's rights go. Only the new
      // certificate can write from now on.
      write(issueClientCertificate('frank'));
      await withdrawRole('erin', erinsRole);
      await kv.put('by', 'frank');
      expect(await kv.getText('by')).toBe('frank');
    } finally {
      await kv.close();
    }
  });
});
