/**
 * A small event emitter with the surface Keyv expects of a storage adapter
 * (`on`, `off`, `once`, `emit`, `listeners`, ...). Unlike Node's EventEmitter,
 * emitting `error` with no listener does not throw.
 */

// biome-ignore lint/suspicious/noExplicitAny: listeners take any arguments, as in Node's EventEmitter.
export type Listener = (...args: any[]) => void;

/** Event emitter of {@link KeyvK8sKv}. */
export class AdapterEmitter {
  readonly #listeners = new Map<string | symbol, Listener[]>();

  /** Adds a listener. */
  on(event: string | symbol, listener: Listener): this {
    const list = this.#listeners.get(event);
    if (list) list.push(listener);
    else this.#listeners.set(event, [listener]);
    return this;
  }

  /** Same as {@link on}. */
  addListener(event: string | symbol, listener: Listener): this {
    return this.on(event, listener);
  }

  /** Adds a listener called at most once. */
  once(event: string | symbol, listener: Listener): this {
    return this.on(event, this.#onceWrapper(event, listener));
  }

  /** A listener that removes itself, then calls `listener`; `off(event, listener)` finds it too. */
  #onceWrapper(event: string | symbol, listener: Listener): Listener {
    const wrapper: Listener = (...args) => {
      this.off(event, wrapper);
      listener(...args);
    };
    Object.defineProperty(wrapper, 'listener', { value: listener });
    return wrapper;
  }

  /** Removes a listener (added with `on` or `once`). */
  off(event: string | symbol, listener: Listener): this {
    const list = this.#listeners.get(event);
    if (!list) return this;
    const index = list.findIndex((l) => l === listener || (l as { listener?: Listener }).listener === listener);
    if (index !== -1) list.splice(index, 1);
    if (list.length === 0) this.#listeners.delete(event);
    return this;
  }

  /** Adds a listener before the others. */
  prependListener(event: string | symbol, listener: Listener): this {
    const list = this.#listeners.get(event);
    if (list) list.unshift(listener);
    else this.#listeners.set(event, [listener]);
    return this;
  }

  /** Adds a listener, called at most once, before the others. */
  prependOnceListener(event: string | symbol, listener: Listener): this {
    return this.prependListener(event, this.#onceWrapper(event, listener));
  }

  /** Same as {@link off}. */
  removeListener(event: string | symbol, listener: Listener): this {
    return this.off(event, listener);
  }

  /** Removes every listener of an event, or of all events. */
  removeAllListeners(event?: string | symbol): this {
    if (event === undefined) this.#listeners.clear();
    else this.#listeners.delete(event);
    return this;
  }

  /** The listeners of an event (the original functions of `once` listeners). */
  listeners(event: string | symbol): Listener[] {
    return (this.#listeners.get(event) ?? []).map((l) => (l as { listener?: Listener }).listener ?? l);
  }

  /** The listeners of an event, with `once` wrappers as they are. */
  rawListeners(event: string | symbol): Listener[] {
    return [...(this.#listeners.get(event) ?? [])];
  }

  /** Events that have listeners. */
  eventNames(): Array<string | symbol> {
    return [...this.#listeners.keys()];
  }

  /** How many listeners an event has. */
  listenerCount(event: string | symbol): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  /**
   * Calls the listeners of an event in order; true if there were any. A
   * listener's exception propagates, as with Node's EventEmitter, but an
   * `error` event without listeners is dropped instead of thrown.
   */
  emit(event: string | symbol, ...args: unknown[]): boolean {
    const list = this.#listeners.get(event);
    if (!list || list.length === 0) return false;
    for (const listener of [...list]) listener(...args);
    return true;
  }
}
