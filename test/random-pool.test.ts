import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomToken } from '../src/random-pool.js';

test('randomBytes hands out fresh arrays of the size asked, never the same bytes twice', () => {
  const seen = new Set<string>();
  // Far more than one pool's worth (4 KiB), so the pool is refilled many times on the way.
  for (let i = 0; i < 2_000; i++) {
    const bytes = randomBytes(32);
    assert.equal(bytes.length, 32);
    assert.equal(bytes.byteOffset, 0, 'its own buffer, not a view into the pool');
    assert.equal(bytes.buffer.byteLength, 32);
    const hex = Buffer.from(bytes).toString('hex');
    assert.ok(!seen.has(hex), 'no 32-byte value repeats');
    seen.add(hex);
  }
});

test('a caller changing its bytes changes nobody else\'s', () => {
  const a = randomBytes(16);
  const b = randomBytes(16);
  const before = Buffer.from(b).toString('hex');
  a.fill(0xff);
  assert.equal(Buffer.from(b).toString('hex'), before);
});

test('sizes from 0 to beyond the pool, and a clear error for a bad size', () => {
  assert.equal(randomBytes(0).length, 0);
  assert.equal(randomBytes(4095).length, 4095);
  assert.equal(randomBytes(4096).length, 4096);
  const large = randomBytes(10_000);
  assert.equal(large.length, 10_000);
  assert.ok(large.some((x) => x !== 0));
  for (const bad of [-1, 1.5, Number.NaN]) assert.throws(() => randomBytes(bad), /randomBytes: size must be a non-negative integer/);
});

test('bytes are spread over every value (not a stuck or zeroed pool)', () => {
  const counts = new Array<number>(256).fill(0);
  for (let i = 0; i < 256; i++) for (const x of randomBytes(64)) counts[x]!++;
  // 16,384 bytes over 256 values: 64 expected each; a value never drawn has odds of ~e^-64.
  assert.ok(counts.every((c) => c > 0), 'every byte value occurs');
});

test('randomToken is base64url of the size asked', () => {
  assert.match(randomToken(), /^[A-Za-z0-9_-]{22}$/);
  assert.match(randomToken(32), /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(randomToken(), randomToken());
});
