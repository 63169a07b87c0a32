import { describe, expect, it, vi } from 'vitest';
import { AdapterEmitter } from '../src/index.ts';

describe('AdapterEmitter', () => {
  it('calls listeners in order, once-listeners once, prepended ones first', () => {
    const emitter = new AdapterEmitter();
    const calls: string[] = [];
    emitter.on('x', (v) => calls.push(`on:${v}`));
    emitter.once('x', (v) => calls.push(`once:${v}`));
    emitter.prependListener('x', (v) => calls.push(`first:${v}`));
    emitter.prependOnceListener('x', (v) => calls.push(`first-once:${v}`));
    expect(emitter.emit('x', 1)).toBe(true);
    expect(emitter.emit('x', 2)).toBe(true);
    expect(calls).toEqual(['first-once:1', 'first:1', 'on:1', 'once:1', 'first:2', 'on:2']);
    expect(emitter.listenerCount('x')).toBe(2);
    expect(emitter.eventNames()).toEqual(['x']);
  });

  it('removes listeners, including once-listeners by their original function', () => {
    const emitter = new AdapterEmitter();
    const a = vi.fn();
    const b = vi.fn();
    emitter.on('x', a).once('x', b);
    expect(emitter.listeners('x')).toEqual([a, b]);
    expect(emitter.rawListeners('x')).toHaveLength(2);
    emitter.off('x', b);
    emitter.emit('x');
    expect(b).not.toHaveBeenCalled();
    emitter.removeListener('x', a);
    expect(emitter.emit('x')).toBe(false);
    emitter.on('y', a).on('z', a);
    emitter.removeAllListeners('y');
    expect(emitter.eventNames()).toEqual(['z']);
    emitter.removeAllListeners();
    expect(emitter.eventNames()).toEqual([]);
  });

  it('drops an error event nobody listens to instead of throwing', () => {
    const emitter = new AdapterEmitter();
    expect(emitter.emit('error', new Error('nobody listens'))).toBe(false);
  });
});
