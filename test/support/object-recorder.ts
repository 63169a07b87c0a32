// Records every state one bucket object goes through, from the API server's
// own list+watch (not through k8s-kv): for tests that check a property of each
// write (a budget never passed, what an eviction removed) rather than only of
// the end state.
import { decodeEnvelopeHeader, type KubeApi, type KubeObject, type ObjectKind, type WatchHandle } from '@k8s-kv/core';

/** One entry of a recorded state. */
export interface RecordedEntry {
  dataKey: string;
  b64: string;
  modifiedAt: number;
  expiresAt: number | undefined;
  /** Envelope bytes (what the API server counts). */
  bytes: number;
  /** Index of the first state in which this entry held this text (it has held it ever since). */
  since: number;
}

/** One state of the object (absent: no entries). */
export interface RecordedState {
  resourceVersion: string;
  entries: Map<string, RecordedEntry>;
  /** Bytes of all entries, as the API server counts them. */
  totalBytes: number;
}

/** A running recording; `states` grows as the object changes. */
export interface ObjectRecording {
  states: RecordedState[];
  /** Set when the watch failed in a way the recorder could not resume from. */
  failure: unknown;
  stop(): void;
}

/** Starts recording the object `name` (which may not exist yet). Resolves once the watch runs. */
export async function recordObject(api: KubeApi, namespace: string, name: string, kind: ObjectKind = 'ConfigMap'): Promise<ObjectRecording> {
  const fieldSelector = `metadata.name=${name}`;
  const field = kind === 'Secret' ? 'data' : 'binaryData';
  const recording: ObjectRecording = { states: [], failure: undefined, stop: () => undefined };
  let handle: WatchHandle | undefined;
  let stopped = false;
  let lastRv = '';

  const add = (object: KubeObject | undefined, rv: string): void => {
    const previous = recording.states.at(-1);
    const index = recording.states.length;
    const entries = new Map<string, RecordedEntry>();
    let totalBytes = 0;
    for (const [dataKey, b64] of Object.entries((object?.[field] as Record<string, string> | undefined) ?? {})) {
      const bytes = Buffer.from(b64, 'base64');
      const header = decodeEnvelopeHeader(new Uint8Array(bytes));
      const before = previous?.entries.get(dataKey);
      entries.set(dataKey, {
        dataKey,
        b64,
        modifiedAt: header.modifiedAt,
        expiresAt: header.expiresAt,
        bytes: bytes.length,
        since: before?.b64 === b64 ? before.since : index,
      });
      totalBytes += bytes.length;
    }
    recording.states.push({ resourceVersion: rv, entries, totalBytes });
    lastRv = rv;
  };

  const watch = async (): Promise<void> => {
    handle = await api.watch(kind, namespace, {
      fieldSelector,
      resourceVersion: lastRv,
      onEvent: (event) => {
        if (event.type === 'BOOKMARK') return;
        const rv = event.object.metadata.resourceVersion ?? lastRv;
        add(event.type === 'DELETED' ? undefined : event.object, rv);
      },
      onClose: (error) => {
        if (stopped) return;
        if (error) recording.failure = error;
        else void watch().catch((e: unknown) => (recording.failure = e)); // the server's timeout: watch on from where it was
      },
    });
  };

  const listed = await api.list(kind, namespace, { fieldSelector });
  add(listed.items[0], listed.items[0]?.metadata.resourceVersion ?? listed.resourceVersion);
  lastRv = listed.resourceVersion;
  await watch();
  recording.stop = () => {
    stopped = true;
    handle?.stop();
  };
  return recording;
}
