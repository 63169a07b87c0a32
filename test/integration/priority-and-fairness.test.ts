// API Priority and Fairness on the real API server, deterministically: a
// FlowSchema puts bob's configmap calls in one namespace on a priority level
// with no nominal seats and no borrowing that rejects what it cannot run
// (APF still runs one request when none is running), and one request of bob's
// that never finishes sending its body holds that one seat. Every other call
// of bob's there is then answered 429 with a Retry-After header. The store
// waits as long as the server asks, within its budget, and says so when the
// budget runs out; once the seat is free, a waiting call goes through.
import * as http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FlowcontrolApiserverV1Api } from '@kubernetes/client-node';
import { createClientNodeApi, createKV, KubeApiError, type RetryEvent } from '@k8s-kv/core';
import { adminKubeConfig, createTestNamespace, grantRole, kubeconfigPath, userKubeConfig, type TestNamespace } from '../setup/cluster.ts';

let ns: TestNamespace;
const flow = (): FlowcontrolApiserverV1Api => adminKubeConfig().makeApiClient(FlowcontrolApiserverV1Api);
const jail = `k8s-kv-test-jail-${randomBytes(3).toString('hex')}`;

let flowSchemaUid: string;
let bob: http2.ClientHttp2Session;

beforeAll(async () => {
  ns = await createTestNamespace('apf');
  await grantRole(ns.name, 'bob', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] }]);
  await flow().createPriorityLevelConfiguration({
    body: {
      metadata: { name: jail },
      spec: { type: 'Limited', limited: { nominalConcurrencyShares: 0, borrowingLimitPercent: 0, lendablePercent: 0, limitResponse: { type: 'Reject' } } },
    },
  });
  const schema = await flow().createFlowSchema({
    body: {
      metadata: { name: jail },
      spec: {
        priorityLevelConfiguration: { name: jail },
        matchingPrecedence: 200,
        distinguisherMethod: { type: 'ByUser' },
        rules: [
          {
            subjects: [{ kind: 'User', user: { name: 'bob' } }],
            resourceRules: [{ verbs: ['*'], apiGroups: [''], resources: ['configmaps'], namespaces: [ns.name] }],
          },
        ],
      },
    },
  });
  flowSchemaUid = schema.metadata!.uid!;
  bob = http2.connect(userKubeConfig('bob').getCurrentCluster()!.server, { ca: readFileSync(join(dirname(kubeconfigPath()), 'pki', 'ca.crt')) });
  bob.on('error', () => undefined);
  // The server takes a moment to apply a new FlowSchema: wait until it classifies bob's calls with it.
  await waitFor(async () => (await bobLists()).flowSchema === flowSchemaUid, 20_000, 'the FlowSchema to apply');
});

afterAll(async () => {
  bob?.destroy();
  await flow()
    .deleteFlowSchema({ name: jail })
    .catch(() => undefined);
  await flow()
    .deletePriorityLevelConfiguration({ name: jail })
    .catch(() => undefined);
  await ns?.cleanup();
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting ${timeoutMs} ms for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** One LIST of configmaps as bob: its status, Retry-After, and the FlowSchema that classified it. */
function bobLists(): Promise<{ status: number; retryAfter?: string; flowSchema?: string }> {
  return new Promise((resolve, reject) => {
    const stream = bob.request({
      ':path': `/api/v1/namespaces/${ns.name}/configmaps`,
      authorization: `Bearer ${userKubeConfig('bob').getCurrentUser()!.token}`,
    });
    stream.on('response', (headers) => {
      resolve({
        status: Number(headers[':status']),
        retryAfter: headers['retry-after'] as string | undefined,
        flowSchema: headers['x-kubernetes-pf-flowschema-uid'] as string | undefined,
      });
      stream.resume();
    });
    stream.on('error', reject);
  });
}

/**
 * Takes the priority level's one seat with a create whose body never arrives;
 * returns the function that frees it. A holder that arrives while another call
 * of bob's runs is itself refused: then it tries again.
 */
async function occupySeat(): Promise<() => void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    let answered = false;
    const stream = bob.request({
      ':method': 'POST',
      ':path': `/api/v1/namespaces/${ns.name}/configmaps`,
      authorization: `Bearer ${userKubeConfig('bob').getCurrentUser()!.token}`,
      'content-type': 'application/json',
      'content-length': '1000',
    });
    stream.on('error', () => undefined);
    stream.on('response', () => (answered = true));
    stream.write('{');
    await new Promise((resolve) => setTimeout(resolve, 200));
    if (!answered && (await bobLists()).status === 429) return () => stream.close(http2.constants.NGHTTP2_CANCEL);
    stream.close(http2.constants.NGHTTP2_CANCEL);
    if (Date.now() > deadline) throw new Error("could not take the priority level's seat in 10 s");
  }
}

it('the server answers 429 with Retry-After; the port surfaces it, and the store waits that long between attempts', async () => {
  const free = await occupySeat();
  try {
    const refused = await createClientNodeApi(userKubeConfig('bob'))
      .get({ kind: 'ConfigMap', namespace: ns.name, name: 'x' })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(KubeApiError);
    expect(refused).toMatchObject({ status: 429 });
    const asked = (refused as KubeApiError).retryAfterSeconds;
    expect(asked).toBeGreaterThanOrEqual(1);

    const events: RetryEvent[] = [];
    // Backoff alone would retry every 10-20 ms; the server asks for seconds.
    const kv = createKV({
      bucket: 'apf',
      namespace: ns.name,
      kubeConfig: userKubeConfig('bob'),
      cache: false,
      retry: { maxElapsedMs: 4_500, initialDelayMs: 10, maxDelayMs: 20, onRetry: (e) => events.push(e) },
    });
    const started = Date.now();
    const error = await kv.put('k', 'v').catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    await kv.close();
    expect(error).toMatchObject({ code: 'KV_UNAVAILABLE', retryable: true });
    expect((error as Error).message).toMatch(/HTTP 429/);
    expect((error as Error).message).toContain(`asked to retry after ${asked} s`);
    expect(events.length).toBeGreaterThanOrEqual(1);
    expect(events.length).toBeLessThanOrEqual(Math.ceil(4_500 / (asked! * 1000)));
    for (const event of events) {
      expect(event.delayMs).toBeGreaterThanOrEqual(asked! * 1000);
      expect(event.reason).toMatch(/^HTTP 429/);
    }
    expect(elapsed).toBeLessThan(4_500 + 1_000);
  } finally {
    free();
  }
});

it('a call waiting on Retry-After goes through once the server lets it', async () => {
  const free = await occupySeat();
  const events: RetryEvent[] = [];
  const kv = createKV({
    bucket: 'apf-later',
    namespace: ns.name,
    kubeConfig: userKubeConfig('bob'),
    cache: false,
    retry: { maxElapsedMs: 30_000, onRetry: (e) => events.push(e) },
  });
  try {
    const put = kv.put('k', 'v');
    await expect.poll(() => events.length, { timeout: 10_000, interval: 50 }).toBeGreaterThanOrEqual(1);
    free();
    await put;
    expect(await kv.getText('k')).toBe('v');
    expect(events[0]).toMatchObject({ reason: expect.stringMatching(/^HTTP 429/) });
  } finally {
    free();
    await kv.close();
  }
});
