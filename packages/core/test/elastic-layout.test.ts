/**
 * Which parts of an elastic bucket are live (docs/FORMAT.md section 9.2), from
 * what a LIST shows: pending copies, rolled-back copies, parts of an earlier
 * head, and copies brought back after their range split again.
 */
import { describe, expect, it } from 'vitest';
import { partName } from '../src/codec/shard-hash.ts';
import { ElasticLayout, type PartInfo } from '../src/engine/elastic-layout.ts';

const HEAD = 'head-uid';
/** Part (depth, suffix) with uid `<depth>/<suffix>#<n>`, pending on `from` when given. */
const part = (depth: number, suffix: number, from?: string, n = 1, headUid = HEAD): PartInfo => ({
  name: partName('b', depth, suffix),
  uid: `${depth}/${suffix}#${n}`,
  depth,
  suffix,
  headUid,
  splitFrom: from === undefined ? undefined : { uid: from, resourceVersion: '7' },
  sealed: false,
});
const live = (parts: PartInfo[]): string[] => [...new ElasticLayout('b', HEAD, parts).live.values()].map((p) => `${p.depth}/${p.suffix}`).sort();

describe('elastic layout: which parts are live', () => {
  it('a pending part is live once the object it was copied from is gone', () => {
    // The root's children: live as soon as the head is in format 3 (the root is never a part).
    expect(live([part(1, 0, HEAD), part(1, 1, HEAD)])).toEqual(['1/0', '1/1']);
    // 1/1 split: pending while it exists, live once it is gone.
    const parent = part(1, 1);
    expect(live([part(1, 0), parent, part(2, 1, parent.uid), part(2, 3, parent.uid)])).toEqual(['1/0', '1/1']);
    expect(live([part(1, 0), part(2, 1, parent.uid), part(2, 3, parent.uid)])).toEqual(['1/0', '2/1', '2/3']);
  });

  it('copies left by a rolled-back split stay pending while their parent lives', () => {
    const parent = part(1, 0);
    const layout = new ElasticLayout('b', HEAD, [parent, part(1, 1), part(2, 0, parent.uid)]);
    expect(layout.complete()).toBe(true);
    expect(layout.shadowed).toEqual([]);
    expect([...layout.live.keys()].sort()).toEqual([partName('b', 1, 0), partName('b', 1, 1)]);
  });

  it('ignores parts of an earlier head of the same name', () => {
    expect(live([part(1, 0), part(1, 1), part(2, 0, undefined, 1, 'old-head')])).toEqual(['1/0', '1/1']);
  });

  it('a copy created again after its range split holds nothing: the deeper parts are live, the copy is shadowed', () => {
    // 1/1 (uid #1) split into 2/1 and 2/3, and 2/1 split again; then a late copier of the root's split created 1/1 anew (#2).
    const late = part(1, 1, HEAD, 2);
    const parts = [part(1, 0), late, part(2, 3, '1/1#1'), part(3, 1, '2/1#1'), part(3, 5, '2/1#1')];
    const layout = new ElasticLayout('b', HEAD, parts);
    expect([...layout.live.values()].map((p) => `${p.depth}/${p.suffix}`).sort()).toEqual(['1/0', '2/3', '3/1', '3/5']);
    expect(layout.shadowed).toEqual([late]);
    expect(layout.complete()).toBe(true);
    // Activated by its copier (split-from removed), it is shadowed all the same.
    expect(new ElasticLayout('b', HEAD, [...parts.filter((p) => p !== late), { ...late, splitFrom: undefined }]).shadowed.map((p) => p.uid)).toEqual([
      late.uid,
    ]);
  });

  it('is not complete when a range has no live part (a view that missed an object)', () => {
    expect(new ElasticLayout('b', HEAD, [part(1, 0), part(2, 1)]).complete()).toBe(false);
  });
});
