import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateTable } from '../src/rate-table.js';

test('each key has its own bucket: burst, then the refill rate', () => {
  let now = 0;
  const table = new RateTable({ rate: 1, burst: 2, maxEntries: 10, now: () => now });
  assert.deepEqual([table.take('a'), table.take('a'), table.take('a'), table.take('b')], ['ok', 'ok', 'limited', 'ok']);
  assert.equal(table.waitMs('a'), 1000);
  now = 1000;
  assert.equal(table.take('a'), 'ok');
  assert.equal(table.tokens('never-seen'), 2);
});

test('a full table sweeps refilled keys, then refuses new keys rather than forget busy ones', () => {
  let now = 0;
  const table = new RateTable({ rate: 1, burst: 1, maxEntries: 2, now: () => now });
  assert.equal(table.take('a'), 'ok');
  assert.equal(table.take('b'), 'ok');
  assert.equal(table.take('c'), 'full', 'a and b are still refilling');
  assert.equal(table.take('a'), 'limited', 'a kept its empty bucket');
  now = 1000;
  assert.equal(table.take('c'), 'ok', 'refilled keys were swept to make room');
  assert.equal(table.size, 1);
});

test('bad parameters are a RangeError naming them', () => {
  assert.throws(() => new RateTable({ rate: 0, burst: 1, maxEntries: 1 }), /rate 0, burst 1, maxEntries 1; expected rate > 0/);
});
