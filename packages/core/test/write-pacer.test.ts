/**
 * Contention backoff (engine/write-pacer.ts): when a write takes far longer than
 * the object's usual time, the next one waits a random part of the excess.
 * Decisions only; no clock is read here.
 */
import { describe, expect, it } from 'vitest';
import { MAX_PACING_MS, SLOW_FACTOR, WritePacer } from '../src/engine/write-pacer.ts';

describe('WritePacer', () => {
  it('never delays a first write, nor a writer that keeps its usual time', () => {
    const pacer = new WritePacer();
    expect(pacer.delayMs(1)).toBe(0);
    for (const ms of [10, 12, 9, 11, 10, 14, 10]) {
      pacer.record(ms);
      expect(pacer.delayMs(1)).toBe(0);
    }
  });

  it('after a write slower than SLOW_FACTOR times the usual, waits a random part of the excess', () => {
    const pacer = new WritePacer();
    pacer.record(10);
    pacer.record(10 * SLOW_FACTOR + 30); // 50 ms: 40 ms more than usual
    expect(pacer.delayMs(0)).toBe(0);
    expect(pacer.delayMs(0.5)).toBeCloseTo(20, 0); // the usual time crept up 2% meanwhile
    expect(pacer.delayMs(1)).toBeCloseTo(40, 0);
    pacer.record(10); // back to usual: no more waiting
    expect(pacer.delayMs(1)).toBe(0);
  });

  it('never waits longer than MAX_PACING_MS (a stalled server is not contention)', () => {
    const pacer = new WritePacer();
    pacer.record(5);
    pacer.record(5000);
    expect(pacer.delayMs(1)).toBe(MAX_PACING_MS);
  });

  it('follows an object whose writes grow slower for good (a growing bucket)', () => {
    const pacer = new WritePacer();
    pacer.record(2);
    for (let i = 0; i < 200; i++) pacer.record(30);
    expect(pacer.delayMs(1)).toBe(0);
  });
});
