import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { RangeSet } from '../../src/transport/range-set.js';

function ranges(set: RangeSet): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < set.rangeCount; i++) out.push(set.range(i));
  return out;
}

describe('RangeSet', () => {
  it('merges ranges that overlap or touch', () => {
    const set = new RangeSet();
    set.add(10, 20);
    set.add(30, 40);
    set.add(20, 25);
    assert.deepEqual(ranges(set), [[10, 25], [30, 40]]);
    set.add(24, 31);
    assert.deepEqual(ranges(set), [[10, 40]]);
  });

  it('splits a range when the middle is deleted', () => {
    const set = new RangeSet();
    set.add(0, 100);
    set.delete(40, 60);
    assert.deepEqual(ranges(set), [[0, 40], [60, 100]]);
    assert.equal(set.has(39), true);
    assert.equal(set.has(40), false);
    assert.equal(set.has(60), true);
  });

  it('reports the gaps of an interval in order', () => {
    const set = new RangeSet();
    set.add(5, 10);
    set.add(15, 20);
    const gaps: Array<[number, number]> = [];
    set.forEachGap(0, 25, (start, end) => gaps.push([start, end]));
    assert.deepEqual(gaps, [[0, 5], [10, 15], [20, 25]]);
  });

  it('agrees with a plain Set under random adds and deletes', () => {
    const operation = fc.record({
      add: fc.boolean(),
      start: fc.integer({ min: 0, max: 200 }),
      length: fc.integer({ min: 0, max: 30 }),
    });
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 60 }), (operations) => {
        const set = new RangeSet();
        const model = new Set<number>();
        for (const { add, start, length } of operations) {
          if (add) {
            set.add(start, start + length);
            for (let v = start; v < start + length; v++) model.add(v);
          } else {
            set.delete(start, start + length);
            for (let v = start; v < start + length; v++) model.delete(v);
          }
        }
        for (let v = 0; v < 240; v++) assert.equal(set.has(v), model.has(v), `value ${v}`);
        const list = ranges(set);
        for (let i = 0; i < list.length; i++) {
          assert.ok(list[i]![0] < list[i]![1], 'ranges are non-empty');
          if (i > 0) assert.ok(list[i - 1]![1] < list[i]![0], 'ranges neither overlap nor touch');
        }
        let gapTotal = 0;
        set.forEachGap(0, 240, (start, end) => {
          gapTotal += end - start;
        });
        assert.equal(gapTotal, 240 - [...model].filter((v) => v < 240).length);
      }),
      { numRuns: 500 },
    );
  });
});
