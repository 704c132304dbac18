import { test } from 'node:test';
import assert from 'node:assert/strict';
import { retransmissionSchedule } from '../../src/stun/retransmission.js';

test('the default schedule is RFC 8489 §6.2.1: sends at 0..31500 ms, gives up at 39500 ms', () => {
  const s = retransmissionSchedule();
  assert.deepEqual(s.sends, [0, 500, 1500, 3500, 7500, 15500, 31500]);
  assert.equal(s.deadline, 39_500);
});

test('a custom schedule doubles the interval and waits rm·rto after the last send', () => {
  assert.deepEqual(retransmissionSchedule({ rto: 100, rc: 3, rm: 4 }), { sends: [0, 100, 300], deadline: 700 });
});

test('nonsense schedules are rejected with a RangeError naming the values', () => {
  assert.throws(() => retransmissionSchedule({ rc: 0 }), { name: 'RangeError', message: /rc 0/ });
  assert.throws(() => retransmissionSchedule({ rto: -1 }), { name: 'RangeError', message: /rto -1/ });
});
