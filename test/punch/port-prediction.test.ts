import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PREDICTION_WINDOW, patternOf, predictWindow } from '../../src/punch/port-prediction.js';
import { PREDICTION_BUDGET } from '../../src/punch/candidate.js';
import { candidateRecord } from '../../src/rendezvous/messages.js';

const samples = (local: number[], mapped: number[]) => local.map((l, i) => ({ local: l, mapped: mapped[i]! }));

test('patternOf: a counter is sequential with its step; preserving, random and too few samples are not predicted', () => {
  // The lab's symmetric-seq: one port per new flow from a counter shared by the whole NAT.
  assert.deepEqual(patternOf(samples([5000, 5001, 5002, 5003], [40010, 40011, 40012, 40013])), { kind: 'sequential', delta: 1 });
  // Another host took a port between two samples: still a counter (3/4 of the steps agree).
  assert.deepEqual(patternOf(samples([1, 2, 3, 4, 5], [40010, 40012, 40014, 40017, 40019])), { kind: 'sequential', delta: 2 });
  assert.deepEqual(patternOf(samples([5000, 5001, 5002, 5003], [5000, 5001, 5002, 5003])), { kind: 'other' }); // port preservation
  assert.deepEqual(patternOf(samples([5000, 5001, 5002, 5003], [31337, 4711, 60001, 20000])), { kind: 'other' });
  assert.deepEqual(patternOf(samples([5000, 5001], [40010, 40011])), { kind: 'other' });
});

test('predictWindow: the next counter values after the sample, the guess first, inside the signed budget', () => {
  assert.deepEqual(predictWindow(40010, 1), { port: 40011, range: { first: 40011, last: 40010 + PREDICTION_WINDOW } });
  // A counter that counts down.
  assert.deepEqual(predictWindow(40010, -1), { port: 40009, range: { first: 40010 - PREDICTION_WINDOW, last: 40009 } });
  // A step of 8: fewer values fit the 64-port budget of a contiguous range.
  assert.deepEqual(predictWindow(1000, 8), { port: 1008, range: { first: 1008, last: 1064 } });
  // At the top of the port space: clipped, never past 65535.
  assert.deepEqual(predictWindow(65_530, 1), { port: 65_531, range: { first: 65_531, last: 65_535 } });
  assert.equal(predictWindow(65_535, 1), undefined);
  assert.equal(predictWindow(1000, 0), undefined);
  assert.equal(predictWindow(1000, 65), undefined); // one value would already exceed the budget
});

test('predictWindow: every window it returns is one the other side accepts as a signed predicted candidate', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 65_535 }), fc.integer({ min: -16, max: 16 }), fc.integer({ min: 1, max: 100 }), (sampled, delta, window) => {
    const predicted = predictWindow(sampled, delta, window);
    if (!predicted) return;
    const { range, port } = predicted;
    assert.ok(range.first <= port && port <= range.last);
    assert.ok(range.last - range.first + 1 <= PREDICTION_BUDGET.maxWindow);
    assert.ok(range.first >= 1 && range.last <= 65_535);
    // The message layer's own check (what a verifying peer runs on it) accepts it.
    candidateRecord({ kind: 'predicted', transport: 'udp', address: '203.0.113.10', port, priority: 2 ** 24 * 50 + 255, range }, 'c');
  }));
});
