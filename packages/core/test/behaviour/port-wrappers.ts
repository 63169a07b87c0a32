/**
 * Ports that change what one or two calls do, for the behaviour suites (both
 * ports): a call replaced, watches whose events can be held back, and watches
 * that can be cut.
 */
import { KubeApiError, type KubeApi, type WatchEvent, type WatchHandle } from '@k8s-kv/core';

/** `api` with some of its methods replaced (the others bound to it). */
export function overriding(api: KubeApi, overrides: Partial<KubeApi>): KubeApi {
  return new Proxy(api, {
    get(target, property, receiver) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof KubeApi];
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * A port whose watches can be held: while held, their events wait, so the
 * caches fed by them fall behind the server (a view as old as you like).
 * `delivered`: the newest resourceVersion an event handed on carried.
 */
export function holdingWatches(api: KubeApi): { api: KubeApi; hold(): void; release(): void; readonly delivered: number } {
  let held: Array<() => void> | undefined;
  let delivered = 0;
  const deliver = (event: WatchEvent, onEvent: (event: WatchEvent) => void): void => {
    delivered = Math.max(delivered, Number(event.object.metadata.resourceVersion));
    onEvent(event);
  };
  const watch: KubeApi['watch'] = (kind, namespace, options) =>
    api.watch(kind, namespace, {
      ...options,
      onEvent: (event: WatchEvent) => (held ? held.push(() => deliver(event, options.onEvent)) : deliver(event, options.onEvent)),
    });
  return {
    api: overriding(api, { watch }),
    hold: () => {
      held ??= [];
    },
    release: () => {
      const queued = held ?? [];
      held = undefined;
      for (const send of queued) send();
    },
    get delivered() {
      return delivered;
    },
  };
}

/**
 * A port whose watches can be cut: `cut()` ends every running watch with a
 * transient failure (as a reset connection does) and holds new watches until
 * `restore()`, so the caches fed by them are down meanwhile (reads go to the server).
 */
export function cuttableWatches(api: KubeApi): { api: KubeApi; cut(): void; restore(): void } {
  const running = new Set<{ handle: WatchHandle; onClose: (error?: unknown) => void }>();
  let down: { promise: Promise<void>; resolve: () => void } | undefined;
  const watch: KubeApi['watch'] = async (kind, namespace, options) => {
    await down?.promise;
    const entry = { handle: undefined as unknown as WatchHandle, onClose: options.onClose };
    entry.handle = await api.watch(kind, namespace, {
      ...options,
      onClose: (error) => {
        running.delete(entry);
        options.onClose(error);
      },
    });
    running.add(entry);
    return {
      stop: () => {
        running.delete(entry);
        entry.handle.stop();
      },
    };
  };
  return {
    api: overriding(api, { watch }),
    cut: () => {
      let resolve!: () => void;
      down ??= { promise: new Promise<void>((r) => (resolve = r)), resolve: () => resolve() };
      for (const entry of [...running]) {
        running.delete(entry);
        entry.handle.stop();
        entry.onClose(new KubeApiError(503, 'ServiceUnavailable', 'watch cut by the test'));
      }
    },
    restore: () => {
      const gate = down;
      down = undefined;
      gate?.resolve();
    },
  };
}
