import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RttEstimator, startDelays } from '../../src/rendezvous/index.js';

test('both sides start together: the farther one gets the smaller delay', () => {
  const [near, far] = startDelays(10, 210, { marginMs: 50 });
  // Arrival at RTT/2, start at arrival + delay: 5 + 150 = 105 + 50.
  assert.deepEqual([near, far], [150, 50]);
  assert.equal(5 + near, 105 + far);
});

test('equal RTTs give equal delays of the margin', () => {
  assert.deepEqual(startDelays(80, 80, { marginMs: 30 }), [30, 30]);
});

test('no margin by default: the farther side starts as the punch arrives', () => {
  assert.deepEqual(startDelays(10, 210), [100, 0]);
  assert.deepEqual(startDelays(80, 80), [0, 0]);
});

test('an unmeasured side counts as far as the measured one, so nobody waits for it', () => {
  assert.deepEqual(startDelays(undefined, 120), [0, 0]);
  assert.deepEqual(startDelays(40, undefined, { marginMs: 5 }), [5, 5]);
  assert.deepEqual(startDelays(undefined, undefined), [0, 0]);
});

test('an unmeasured side counts with the default RTT and delays are capped', () => {
  assert.deepEqual(startDelays(undefined, 0, { defaultRttMs: 100, marginMs: 0 }), [0, 50]);
  assert.deepEqual(startDelays(0, 1e9, { maxDelayMs: 1000, marginMs: 0 }), [1000, 0]);
});

test('the RTT estimate is smoothed as RFC 6298 describes', () => {
  const rtt = new RttEstimator();
  assert.equal(rtt.srtt, undefined);
  rtt.sample(100);
  assert.equal(rtt.srtt, 100);
  rtt.sample(180);
  assert.equal(rtt.srtt, 110);
  rtt.sample(Number.NaN);
  rtt.sample(-1);
  assert.equal(rtt.srtt, 110);
});
