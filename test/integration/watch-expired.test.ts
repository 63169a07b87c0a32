// A watch expired under load: while another process's writes pour in, the
// server ends the watch again and again with 410 Gone (the ERROR event it sends
// when a watch's resourceVersion has been compacted away, injected by the fault
// proxy on the watch's own connection); the cache relists each time from the
// real API server. Afterwards the cache equals the server, and the change events
// lose nothing: every key ends with the event that matches its final state.
import { expect, it } from 'vitest';
import { createKV, type KVChangeEvent } from '@k8s-kv/core';
import { adminKubeConfig } from '../setup/cluster.ts';
import { useProxiedNamespace } from '../support/cluster-proxy.ts';
import { seededRandom } from '../support/fault-proxy.ts';

const env = useProxiedNamespace('watch-expired');

const decode = (values: Map<string, Uint8Array>): Record<string, string> => Object.fromEntries([...values].map(([k, v]) => [k, Buffer.from(v).toString()]));

for (const shards of [1, 4]) {
  it(`relists after 410 Gone again and again under load and loses no change (${shards === 1 ? 'plain' : `${shards} shards`})`, async () => {
    const bucket = `expired-${shards}`;
    const writer = createKV({ bucket, namespace: env.ns.name, kubeConfig: adminKubeConfig(), cache: false, shards });
    const cached = createKV({ bucket, namespace: env.ns.name, kubeConfig: env.proxied.kubeConfig(), shards });
    const last = new Map<string, KVChangeEvent['type']>();
    try {
      await writer.put('seed', '0');
      // The first 12 watches of the bucket end with 410 after 0-9 events each.
      const before = env.proxied.proxy.log.length;
      for (let nth = 1; nth <= 12; nth++)
        env.proxied.proxy.inject({ match: { watch: true, path: env.ns.name }, nth, fault: { kind: 'expire-watch', afterEvents: (nth * 7) % 10 } });
      const unsubscribe = await cached.watch((event) => last.set(event.key, event.type));
      expect(await cached.getText('seed')).toBe('0');

      // The load: 8 writers x 60 mixed calls on 40 keys.
      const random = seededRandom(shards);
      const key = (): string => `k${Math.floor(random() * 40)}`;
      await Promise.all(
        Array.from({ length: 8 }, async (_, slot) => {
          for (let i = 0; i < 60; i++) {
            const pick = random();
            const value = `${slot}.${i}`;
            if (pick < 0.45) await writer.put(key(), value);
            else if (pick < 0.65) await writer.delete(key());
            else if (pick < 0.85) await writer.putMany([key(), key(), key()].map((k) => [k, value] as [string, string]));
            else await writer.deleteMany([key(), key()]);
          }
        }),
      );
      const truth = decode(await writer.list());
      await expect.poll(async () => decode(await cached.list()), { timeout: 20_000 }).toEqual(truth);
      const expiries = env.proxied.proxy.log.slice(before).filter((e) => e.fault === 'expire-watch').length;
      expect(expiries).toBeGreaterThanOrEqual(5);
      for (let k = 0; k < 40; k++) {
        const name = `k${k}`;
        if (name in truth) expect(last.get(name), name).toBe('put');
        else expect(last.get(name), name).not.toBe('put');
      }
      unsubscribe();
    } finally {
      env.proxied.proxy.clearFaults();
      await Promise.all([writer.close(), cached.close()]);
    }
  });
}
