// A process's own writes and its own split, through the fault proxy in front of the
// real API server (docs/FORMAT.md 9.4 step 1): the process that splits an object
// seals it once none of its writes to it is on the wire, but waits no longer than a
// second for one stuck there; that write, when it arrives after the seal or the
// switch, is refused at the server and goes to the part that now holds its key.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createClientNodeApi, createKV, LABEL_BUCKET } from '@k8s-kv/core';
import { SPLIT_BYTES, SPLIT_HOOK, type SplitStep } from '@k8s-kv/core/testing';
import { adminKubeConfig } from '../setup/cluster.ts';
import { useProxiedNamespace } from '../support/cluster-proxy.ts';

const env = useProxiedNamespace('split-held');

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const text = (v: Uint8Array | undefined): string | undefined => (v === undefined ? undefined : Buffer.from(v).toString());

describe('a split and a write of its own process stuck on the wire', () => {
  it('seals after a second instead of waiting for the write, which then lands in the part that holds its key', async () => {
    const bucket = 'held-stuck';
    /** Set once the stuck write is on the wire; the split waits for it before its seal. */
    let stuckSent!: () => void;
    const stuck = new Promise<void>((resolve) => {
      stuckSent = resolve;
    });
    const kv = createKV({
      bucket,
      namespace: env.ns.name,
      kubeConfig: env.proxied.kubeConfig(),
      cache: false,
      retry: { maxElapsedMs: 20_000 },
      [SPLIT_HOOK]: async (step: SplitStep) => {
        if (step === 'seal') await stuck;
      },
    } as Parameters<typeof createKV>[0]);
    const admin = createClientNodeApi(adminKubeConfig());
    const objects = async (): Promise<number> =>
      (await admin.list('ConfigMap', env.ns.name, { labelSelector: `${LABEL_BUCKET}=${bucket}` }, { metadataOnly: true })).items.length;
    try {
      await kv.put('first', 'x'); // creates the bucket
      // Past the split threshold in one write: its answer starts the split, which waits at the seal for the next write.
      // Random values (they do not compress), about 400 bytes each.
      const model = new Map(
        Array.from({ length: Math.ceil(SPLIT_BYTES / 400) + 10 }, (_, i) => [`k${i}`, randomBytes(300).toString('base64')] as [string, string]),
      );
      await kv.putMany([...model]);
      // The next patch of the bucket's object goes out, then waits 3 s at the proxy before the server sees it.
      let armed = true;
      env.proxied.proxy.inject({
        match: (request) => {
          const hit = armed && request.method === 'PATCH' && request.path.includes(`/configmaps/${bucket}`);
          if (hit) {
            armed = false;
            stuckSent();
          }
          return hit;
        },
        fault: { kind: 'delay', ms: 3_000 },
      });
      const started = performance.now();
      const late = kv.put('late', 'written while stuck');
      let lateDone = false;
      void late.then(() => {
        lateDone = true;
      });
      await stuck;
      // The split seals a second after the write went out, and switches: parts exist while the write is still stuck.
      await sleep(2_300);
      expect(lateDone).toBe(false);
      expect(await objects()).toBeGreaterThanOrEqual(3);
      await late;
      expect(performance.now() - started).toBeGreaterThanOrEqual(3_000);
      model.set('first', 'x');
      model.set('late', 'written while stuck');
      const reader = createKV({ bucket, namespace: env.ns.name, kubeConfig: adminKubeConfig(), cache: false });
      try {
        const all = await reader.list();
        expect(new Map([...all].map(([k, v]) => [k, text(v)]))).toEqual(model);
      } finally {
        await reader.close();
      }
    } finally {
      env.proxied.proxy.clearFaults();
      await kv.close();
    }
  });
});
