import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { restCredentials } from '../../src/turn/index.js';
import { UsageError } from '../../src/errors.js';

test('the username is "<expiry seconds>:<user>" and the password base64(HMAC-SHA1(secret, username))', () => {
  const { username, password } = restCredentials('s3cret', 'alice', 600, 1_700_000_000_500);
  assert.equal(username, '1700000600:alice');
  assert.equal(password, createHmac('sha1', 's3cret').update('1700000600:alice').digest('base64'));
  // Fixed vector, computed with `printf %s 1700000600:alice | openssl dgst -sha1 -hmac s3cret -binary | base64`.
  assert.equal(password, 'bUIJIVaC05oyFgKsQvKAparqg1Q=');
});

test('an empty user gives the bare expiry', () => {
  assert.equal(restCredentials('s', '', 10, 0).username, '10');
});

test('refuses a ttl that is not a positive number', () => {
  for (const ttl of [0, -1, Number.NaN, Infinity]) {
    assert.throws(() => restCredentials('s', 'u', ttl), (error: unknown) => error instanceof UsageError && /ttlSeconds/.test(error.message));
  }
});
