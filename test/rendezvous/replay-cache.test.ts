import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplayCache, TokenBucket } from '../../src/rendezvous/index.js';

test('a nonce is refused as replayed until its intent expires', () => {
  let now = 1000;
  const cache = new ReplayCache({ now: () => now });
  assert.equal(cache.add('n', 2000), 'added');
  assert.equal(cache.add('n', 2000), 'replayed');
  now = 2000;
  assert.equal(cache.add('n', 3000), 'added', 'expired entries may be reused');
});

test('a full cache of live entries fails closed, and sweeps expired ones first', () => {
  let now = 0;
  const cache = new ReplayCache({ maxEntries: 2, now: () => now });
  assert.equal(cache.add('a', 10), 'added');
  assert.equal(cache.add('b', 20), 'added');
  assert.equal(cache.add('c', 30), 'full');
  now = 10;
  assert.equal(cache.add('c', 30), 'added');
  assert.equal(cache.size, 2);
});

test('a token bucket allows its burst, then its rate', () => {
  let now = 0;
  const bucket = new TokenBucket(2, 3, () => now);
  assert.deepEqual([bucket.take(), bucket.take(), bucket.take(), bucket.take()], [true, true, true, false]);
  now = 500;
  assert.deepEqual([bucket.take(), bucket.take()], [true, false]);
  now = 60_000;
  assert.deepEqual([bucket.take(), bucket.take(), bucket.take(), bucket.take()], [true, true, true, false], 'never more than the burst');
  assert.throws(() => new TokenBucket(1, 0), RangeError);
});
