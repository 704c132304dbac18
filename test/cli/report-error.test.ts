import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NatpunchError, UsageError } from '../../src/errors.js';
import { errorEvent, errorLine, exitCodeFor } from '../../src/cli/report-error.js';

test('an error line names its command once: never "natpunch: natpunch serve:"', () => {
  assert.equal(errorLine(new NatpunchError('ERR_LISTEN', 'natpunch serve: cannot listen')), 'natpunch serve: cannot listen');
  assert.equal(errorLine(new NatpunchError('ERR_RENDEZVOUS', 'cannot reach ws://x/')), 'natpunch: cannot reach ws://x/');
  assert.equal(errorLine(new Error('natpunch lab matrix: serve died')), 'natpunch lab matrix: unexpected failure: serve died');
  assert.equal(errorLine(new TypeError('x is undefined')), 'natpunch: unexpected failure: x is undefined');
});

test('a stack only when asked for', () => {
  const error = new TypeError('boom');
  assert.doesNotMatch(errorLine(error), /\n/);
  assert.match(errorLine(error, true), /^natpunch: unexpected failure: boom\nTypeError: boom\n\s+at /);
});

test('exit 2 for usage errors, 1 for the rest; the JSON event carries the code', () => {
  assert.equal(exitCodeFor(new UsageError('x')), 2);
  assert.equal(exitCodeFor(new NatpunchError('ERR_DNS', 'x')), 1);
  assert.equal(exitCodeFor(new Error('x')), 1);
  assert.deepEqual(errorEvent(new NatpunchError('ERR_DNS', 'no such host')), { event: 'error', code: 'ERR_DNS', message: 'no such host' });
  assert.deepEqual(errorEvent('text'), { event: 'error', code: 'ERR_UNEXPECTED', message: 'text' });
});
