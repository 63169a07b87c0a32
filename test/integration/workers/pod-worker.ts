// A store configured the way it is in a pod, for the identity tests: KubeConfig.loadFromCluster()
// over K8S_KV_POD_ROOT, a directory that holds var/run/secrets/kubernetes.io/serviceaccount/{token,
// ca.crt,namespace}, with KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT set by the parent (a
// process of its own, so that these variables reach no other test). No namespace is given: the store
// finds it as in a pod. Commands arrive as JSON lines on stdin ({ id, op, ... }); each is answered by
// one JSON line with the same id. Changes seen by kv.watch() are written as { event: 'change', ... }
// lines, background errors as { event: 'error', ... }.
import { createInterface } from 'node:readline';
import { createClientNodeApi, createKV, KubeConfig } from '@k8s-kv/core';
import { countingApi } from '@k8s-kv/core/testing';

interface Command {
  id: number;
  op: 'namespace' | 'put' | 'get' | 'watch' | 'close';
  key?: string;
  value?: string;
}

const kubeConfig = new KubeConfig();
kubeConfig.loadFromCluster(process.env.K8S_KV_POD_ROOT);
const counting = countingApi(createClientNodeApi(kubeConfig));
const send = (record: object): void => {
  process.stdout.write(`${JSON.stringify(record)}\n`);
};
const kv = createKV({
  bucket: process.env.K8S_KV_BUCKET ?? 'pod',
  app: 'identity',
  kubeConfig,
  api: counting.api,
  // A budget far beyond the test's timeout: a refusal that were retried would never come back in time.
  retry: { maxElapsedMs: 600_000 },
  onError: (error) => send({ event: 'error', code: (error as { code?: string }).code, status: (error as { status?: number }).status, message: String(error) }),
});

/** Port calls other than the watch loop's (list, watch), since the last command. */
function requests(): number {
  const { get = 0, create = 0, mergePatch = 0, strategicMergePatch = 0, jsonPatch = 0, delete: del = 0 } = counting.counts;
  return get + create + mergePatch + strategicMergePatch + jsonPatch + del;
}

async function run(command: Command): Promise<object> {
  switch (command.op) {
    case 'namespace':
      return { namespace: kv.namespace };
    case 'put':
      await kv.put(command.key!, command.value!);
      return {};
    case 'get':
      return { value: (await kv.getText(command.key!)) ?? null };
    case 'watch':
      await kv.watch((event) => send({ event: 'change', type: event.type, key: event.key }));
      return {};
    case 'close':
      await kv.close();
      setImmediate(() => process.exit(0));
      return {};
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  const command = JSON.parse(line) as Command;
  counting.reset();
  run(command).then(
    (result) => send({ id: command.id, ok: true, requests: requests(), ...result }),
    (error: unknown) => send({ id: command.id, ok: false, requests: requests(), code: (error as { code?: string }).code, message: String(error) }),
  );
}
