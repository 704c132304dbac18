import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ReplayWindow } from '../../src/secure/replay-window.js';

describe('the replay window', () => {
  it('accepts each counter once, in any order within the window', () => {
    const window = new ReplayWindow(64);
    for (const counter of [5, 3, 9, 4, 0]) assert.equal(window.accept(counter), true, `first ${counter}`);
    for (const counter of [5, 3, 9, 4, 0]) assert.equal(window.accept(counter), false, `replayed ${counter}`);
    assert.equal(window.newest, 9);
  });

  it('refuses counters as old as the window size or older', () => {
    const window = new ReplayWindow(64);
    window.accept(1000);
    assert.equal(window.check(1000 - 63), true);
    assert.equal(window.check(1000 - 64), false);
  });

  it('forgets nothing within the window across a far jump, and clears what fell out', () => {
    const window = new ReplayWindow(64);
    window.accept(10);
    window.accept(10 + 64 * 5);
    assert.equal(window.check(10), false, 'too old now');
    assert.equal(window.check(10 + 64 * 5 - 1), true, 'never seen');
  });

  it('works with counters beyond 2^32', () => {
    const window = new ReplayWindow();
    const base = 2 ** 40;
    assert.equal(window.accept(base + 1), true);
    assert.equal(window.accept(base), true);
    assert.equal(window.accept(base + 1), false);
  });

  it('refuses a size that is not a positive multiple of 32', () => {
    assert.throws(() => new ReplayWindow(100), RangeError);
    assert.throws(() => new ReplayWindow(0), RangeError);
  });

  it('behaves like a set of seen counters limited to the window (model check)', () => {
    const size = 64;
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 400 }), { maxLength: 300 }), (counters) => {
        const window = new ReplayWindow(size);
        const seen = new Set<number>();
        let newest = -1;
        for (const counter of counters) {
          const expected = !seen.has(counter) && (counter > newest || newest - counter < size);
          assert.equal(window.accept(counter), expected, `counter ${counter} after newest ${newest}`);
          if (expected) {
            seen.add(counter);
            newest = Math.max(newest, counter);
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
