// The pure planner of evictions and active expiry (engine/eviction.ts) and of the
// background sweep (engine/expiry-sweeper.ts), then the eviction behaviour on the
// in-memory port (the same suite runs against the real API server in
// test/integration/eviction.test.ts).
import { describe, expect, it } from 'vitest';
import { createMemoryApi } from '@k8s-kv/core/testing';
import { prepareEntry, type PreparedEntry } from '../src/codec/entry.ts';
import { EVICTION_HEADROOM, MAX_PATCH_OPS, planWrite, type PlanInput, type WritePlan } from '../src/engine/eviction.ts';
import { ExpirySweeper, planSweep } from '../src/engine/expiry-sweeper.ts';
import { emptySnapshot, snapshotOf, type Snapshot } from '../src/engine/snapshot.ts';
import { describeEvictionBehaviour } from './behaviour/eviction-behaviour.ts';

const T0 = 1_700_000_000_000;

/** An entry of `size` value bytes (uncompressed, so that sizes are exact), written at `at`, expiring after `ttl`. */
function entry(key: string, at: number, size = 100, ttl?: number): PreparedEntry {
  return prepareEntry({ key, value: new Uint8Array(size).fill(120), text: false, now: at, ttl, compress: false });
}

/** A snapshot of an object holding `entries`. */
function objectOf(entries: PreparedEntry[]): Snapshot {
  return snapshotOf('ConfigMap', {
    metadata: { name: 'b', uid: 'u1', resourceVersion: '7' },
    binaryData: Object.fromEntries(entries.map((e) => [e.dataKey, e.b64])),
  });
}

const plan = (input: Partial<PlanInput> & { snapshot: Snapshot }): WritePlan => planWrite({ incoming: [], now: T0, ...input });
const removed = (p: WritePlan): string[] => (p.fits ? p.removals.map((r) => r.key) : []);

describe('planWrite', () => {
  // Ten 115-byte entries (15-byte header + 100), written one second apart: 1,150 bytes.
  const ten = Array.from({ length: 10 }, (_, i) => entry(`k${i}`, T0 - 100_000 + i * 1000));

  it('within the budget and nothing expired: removes nothing', () => {
    const p = plan({ snapshot: objectOf(ten), incoming: [entry('new', T0)], budget: { bytes: 2000 } });
    expect(p).toMatchObject({ fits: true, removals: [], usage: { currentBytes: 1150, attemptedBytes: 1265, currentEntries: 10, attemptedEntries: 11 } });
  });

  it('over the budget without a policy: does not fit, and says by how much', () => {
    const p = plan({ snapshot: objectOf(ten), incoming: [entry('new', T0)], budget: { bytes: 1200 } });
    expect(p).toEqual({
      fits: false,
      why: 'budget',
      usage: { currentBytes: 1150, attemptedBytes: 1265, limitBytes: 1200, currentEntries: 10, attemptedEntries: 11, limitEntries: undefined },
    });
  });

  it("'oldest': evicts the least recently written until 1/16 of the budget is free, never an entry being written", () => {
    const budget = { bytes: 1200 };
    const p = plan({ snapshot: objectOf(ten), incoming: [entry('new', T0), entry('k0', T0)], budget, policy: 'oldest' });
    // k0 is rewritten (same size); "new" adds 115: 1,265 bytes, over 1,200; the target is 1,200 - 75 = 1,125: two go.
    expect(1200 - Math.floor(1200 * EVICTION_HEADROOM)).toBe(1125);
    expect(removed(p)).toEqual(['k1', 'k2']);
    // Each removal carries the stored text its `test` compares.
    const snapshot = objectOf(ten);
    expect(p.fits && p.removals.map((r) => r.b64)).toEqual([snapshot.entries.get('k1')!.b64, snapshot.entries.get('k2')!.b64]);
    expect(p.fits && p.removals.every((r) => !r.expired)).toBe(true);
  });

  it("'expiring': evicts the closest to expiry first, entries without a TTL last (oldest first among them)", () => {
    const entries = [
      entry('no-ttl-old', T0 - 9000),
      entry('in-60s', T0 - 5000, 100, 65_000),
      entry('in-10s', T0 - 1000, 100, 11_000),
      entry('no-ttl-new', T0 - 500),
      entry('in-30s', T0 - 3000, 100, 33_000),
    ];
    const snapshot = objectOf(entries);
    expect(removed(plan({ snapshot, incoming: [entry('x', T0)], budget: { bytes: 10_000, entries: 5 }, policy: 'expiring' }))).toEqual(['in-10s']);
    expect(removed(plan({ snapshot, incoming: [entry('x', T0), entry('y', T0)], budget: { bytes: 10_000, entries: 3 }, policy: 'expiring' }))).toEqual([
      'in-10s',
      'in-30s',
      'in-60s',
      'no-ttl-old',
    ]);
    // The same object under 'oldest': by write time only.
    expect(removed(plan({ snapshot, incoming: [entry('x', T0)], budget: { bytes: 10_000, entries: 5 }, policy: 'oldest' }))).toEqual(['no-ttl-old']);
  });

  it('an entry budget: counts entries (a rewrite adds none), with 1/16 headroom rounded down', () => {
    const snapshot = objectOf(ten);
    expect(plan({ snapshot, incoming: [entry('k3', T0)], budget: { bytes: 1 << 20, entries: 10 } })).toMatchObject({ fits: true, removals: [] });
    expect(plan({ snapshot, incoming: [entry('new', T0)], budget: { bytes: 1 << 20, entries: 10 } })).toMatchObject({
      fits: false,
      usage: { attemptedEntries: 11, limitEntries: 10 },
    });
    expect(removed(plan({ snapshot, incoming: [entry('new', T0)], budget: { bytes: 1 << 20, entries: 10 }, policy: 'oldest' }))).toEqual(['k0']);
    const many = objectOf(Array.from({ length: 32 }, (_, i) => entry(`m${String(i).padStart(2, '0')}`, T0 - 100_000 + i)));
    expect(removed(plan({ snapshot: many, incoming: [entry('new', T0)], budget: { bytes: 1 << 20, entries: 32 }, policy: 'oldest' }))).toEqual([
      'm00',
      'm01',
      'm02',
    ]);
  });

  it('expired entries go first when over the budget, all of them, with or without a policy', () => {
    const entries = [...ten, entry('gone-1', T0 - 50_000, 100, 1000), entry('gone-2', T0 - 60_000, 100, 1000)];
    const snapshot = objectOf(entries);
    const p = plan({ snapshot, incoming: [entry('new', T0)], budget: { bytes: 1300 } });
    expect(removed(p)).toEqual(['gone-2', 'gone-1']); // oldest expiry first
    expect(p.fits && p.removals.every((r) => r.expired)).toBe(true);
    // Not enough: then the policy.
    expect(removed(plan({ snapshot, incoming: [entry('new', T0), entry('new2', T0)], budget: { bytes: 1300 }, policy: 'oldest' }))).toEqual([
      'gone-2',
      'gone-1',
      'k0',
      'k1',
    ]);
  });

  it('entries that do not fit even in an empty object do not fit, whatever the policy', () => {
    const p = plan({ snapshot: objectOf(ten), incoming: [entry('huge', T0, 2000)], budget: { bytes: 1200 }, policy: 'oldest' });
    expect(p).toMatchObject({ fits: false, why: 'budget' });
    expect(plan({ snapshot: emptySnapshot(), incoming: [entry('huge', T0, 2000)], budget: { bytes: 1200 } })).toMatchObject({ fits: false });
  });

  it('caps bytes at the 1 MiB an object holds, whatever the budget says', () => {
    const p = plan({ snapshot: emptySnapshot(), incoming: [entry('big', T0, 1_048_576)], budget: { bytes: 64 << 20 } });
    expect(p).toMatchObject({ fits: false, usage: { limitBytes: 1_048_576 } });
  });

  it('active expiry: a write within the budget removes expired entries once they pass 1/4 of the object, down to 1/8', () => {
    const live = Array.from({ length: 6 }, (_, i) => entry(`live${i}`, T0 - 10_000));
    const expired = (n: number) => Array.from({ length: n }, (_, i) => entry(`exp${i}`, T0 - 10_000 - i, 100, 1000));
    // 2 expired of 9 (the write included): 246 of 1,051 bytes, 23%: left alone.
    expect(removed(plan({ snapshot: objectOf([...live, ...expired(2)]), incoming: [entry('new', T0)] }))).toEqual([]);
    // 4 expired of 11: 492 of 1,297 bytes (38%): removed, oldest expiry first, until at most 1/8 remain.
    const p = plan({ snapshot: objectOf([...live, ...expired(4)]), incoming: [entry('new', T0)] });
    expect(removed(p)).toEqual(['exp3', 'exp2', 'exp1', 'exp0']);
    // An expired entry being rewritten is not removed: it is replaced.
    expect(removed(plan({ snapshot: objectOf([...live, ...expired(4)]), incoming: [entry('exp0', T0)] }))).toEqual(['exp3', 'exp2', 'exp1']);
  });

  it('never plans more removals than one JSON patch holds', () => {
    const tiny = Array.from({ length: 6000 }, (_, i) => entry(`t${i}`, T0 - 100_000 + i, 1));
    const snapshot = objectOf(tiny);
    // Making room for 5,000 more entries within 6,000 would take 5,000 removals: more than fit in one patch.
    const incoming = Array.from({ length: 5000 }, (_, i) => entry(`n${i}`, T0, 1));
    const p = plan({ snapshot, incoming, budget: { bytes: 1 << 20, entries: 6000 }, policy: 'oldest' });
    expect(p).toMatchObject({ fits: false, why: 'patch' });
    const q = plan({ snapshot, incoming: incoming.slice(0, 100), budget: { bytes: 1 << 20, entries: 6000 }, policy: 'oldest' });
    expect(q.fits && q.removals.length).toBe(100 + Math.floor(6000 * EVICTION_HEADROOM));
    expect(2 * (q.fits ? q.removals.length : 0) + 100).toBeLessThanOrEqual(MAX_PATCH_OPS);
  });
});

describe('planSweep', () => {
  const period = 60_000;
  const snapshot = objectOf([entry('live', T0), entry('a', T0 - 10_000, 100, 5_000), entry('b', T0 - 10_000, 100, 9_000)]);

  it('sweeps nothing until the oldest expired entry has been expired for half a period', () => {
    expect(planSweep(snapshot, T0, period)).toEqual([]);
    expect(planSweep(snapshot, T0 - 5_000 + period / 2 - 1, period)).toEqual([]);
  });

  it('then removes every expired entry, oldest expiry first, each with its stored text', () => {
    const at = T0 - 5_000 + period / 2;
    expect(planSweep(snapshot, at, period).map((r) => [r.key, r.b64])).toEqual([
      ['a', snapshot.entries.get('a')!.b64],
      ['b', snapshot.entries.get('b')!.b64],
    ]);
  });

  it('the sweeper looks at its view on an unref timer, and stops', async () => {
    const swept: string[][] = [];
    let view: Snapshot | undefined;
    const sweeper = new ExpirySweeper({
      periodMs: 100,
      view: () => view,
      now: () => T0 + period,
      sweep: async (_s, removals) => void swept.push(removals.map((r) => r.key)),
    });
    sweeper.start();
    await new Promise((r) => setTimeout(r, 120));
    expect(swept).toEqual([]); // no view: nothing
    view = snapshot;
    await sweeper.look();
    expect(swept).toEqual([['a', 'b']]);
    sweeper.stop();
    expect(sweeper.started).toBe(false);
    await new Promise((r) => setTimeout(r, 120));
    expect(swept).toHaveLength(1);
  });
});

const api = createMemoryApi();
describeEvictionBehaviour('in-memory port', () => ({ api, namespace: 'default' }));
