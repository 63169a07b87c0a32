/**
 * Ports that change what one or two calls do, for the behaviour suites (both
 * ports): a call replaced, and watches whose events can be held back.
 */
import type { KubeApi, WatchEvent } from '@k8s-kv/core';

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
