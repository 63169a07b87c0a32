/**
 * The limit on a store's writes on the wire (engine/write-limit.ts): it lets writes go
 * up to the limit and queues the rest, grows while answers come at the no-queue time,
 * shrinks while they come late (a queue at the server). Decisions only: the times are given.
 */
import { describe, expect, it } from 'vitest';
import { INITIAL_WRITES, MAX_WRITES, MIN_WRITES, WriteLimit } from '../src/engine/write-limit.ts';

/** Takes `count` turns at once; resolves to their release functions. */
const take = (limit: WriteLimit, count: number): Promise<Array<(ms: number | undefined) => void>> =>
  Promise.all(Array.from({ length: count }, () => limit.acquire()));

describe('WriteLimit', () => {
  it('lets INITIAL_WRITES writes go at once; the next waits until one is answered', async () => {
    const limit = new WriteLimit();
    const turns = await take(limit, INITIAL_WRITES);
    expect(limit.active).toBe(INITIAL_WRITES);
    let waited = false;
    const next = limit.acquire().then((turn) => {
      waited = true;
      return turn;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(waited).toBe(false);
    turns[0]!(undefined); // failed (not timed): frees its turn, changes nothing
    const turn = await next;
    expect(waited).toBe(true);
    expect(limit.limit).toBe(INITIAL_WRITES);
    for (const t of [...turns.slice(1), turn]) t(undefined);
    expect(limit.active).toBe(0);
  });

  it('lets waiting writes go earliest deadline first (the first to come among equal ones)', async () => {
    const limit = new WriteLimit();
    const turns = await take(limit, INITIAL_WRITES);
    const order: string[] = [];
    const wait = (name: string, deadline?: number): Promise<(ms: number | undefined) => void> =>
      limit.acquire(deadline).then((turn) => {
        order.push(name);
        return turn;
      });
    const waiting = [wait('late', 3000), wait('none'), wait('early', 1000), wait('early too', 1000)];
    for (const turn of turns.slice(1)) turn(undefined); // three turns free up: the earliest three go
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(['early', 'early too', 'late']);
    turns[0]!(undefined);
    for (const turn of await Promise.all(waiting)) turn(undefined);
    expect(order).toEqual(['early', 'early too', 'late', 'none']);
    expect(limit.active).toBe(0);
  });

  it('makes a newcomer wait behind the writes already waiting', async () => {
    const limit = new WriteLimit();
    const turns = await take(limit, INITIAL_WRITES);
    const order: string[] = [];
    const wait = (name: string, deadline: number): Promise<(ms: number | undefined) => void> =>
      limit.acquire(deadline).then((turn) => {
        order.push(name);
        return turn;
      });
    const first = wait('waiting', 2000);
    turns[0]!(undefined); // the waiting write takes the turn freed...
    const second = wait('newcomer', 1000);
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(['waiting']); // ... and the newcomer, with an earlier deadline, waits for the next one
    turns[1]!(undefined);
    for (const turn of [await first, await second, ...turns.slice(2)]) turn(undefined);
    expect(order).toEqual(['waiting', 'newcomer']);
  });

  it('grows while used writes are answered at the no-queue time, up to MAX_WRITES', () => {
    const limit = new WriteLimit();
    for (let i = 0; i < 2000; i++) limit.record(5, limit.limit);
    expect(limit.limit).toBe(MAX_WRITES);
  });

  it('does not grow a limit that is not used (an idle store keeps its gates as they are)', () => {
    const limit = new WriteLimit();
    for (let i = 0; i < 100; i++) limit.record(5, 1);
    expect(limit.limit).toBe(INITIAL_WRITES);
  });

  it('shrinks while answers come far later than the no-queue time (a queue at the server), down to MIN_WRITES', () => {
    const limit = new WriteLimit();
    limit.record(2, 1); // the no-queue time: 2 ms
    for (let i = 0; i < 200; i++) limit.record(40, limit.limit);
    expect(limit.limit).toBe(MIN_WRITES);
  });

  it('settles where its queue at the server is a few writes: answers that grow with the writes on the wire', () => {
    // A server that answers in 2 ms plus 1 ms per write of this store on the wire (its queue);
    // the store's first write went alone.
    const limit = new WriteLimit();
    limit.record(3, 1);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      limit.record(2 + limit.limit, limit.limit);
      if (i >= 1000) seen.add(limit.limit);
    }
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(MIN_WRITES);
    expect(Math.max(...seen)).toBeLessThanOrEqual(10);
  });

  it('keeps a high limit when the time is the network (answers near the no-queue time at any limit)', () => {
    const limit = new WriteLimit();
    // A distant server: 20 ms, give or take 2%, whatever the writes on the wire.
    for (let i = 0; i < 2000; i++) limit.record(20 + (i % 3) * 0.2, limit.limit);
    expect(limit.limit).toBeGreaterThanOrEqual(100);
  });
});
