/** Shared test helpers for the wire codec tests. */

import assert from 'node:assert/strict';
import { NatpunchError, StunDecodeError, StunEncodeError, UsageError } from '../../src/errors.js';

/** Bytes from hex as the RFCs print it (spaces and line breaks ignored). */
export function hex(text: string): Uint8Array {
  const digits = text.replace(/[^0-9a-fA-F]/g, '');
  assert.equal(digits.length % 2, 0, 'hex fixture has an odd number of digits');
  return new Uint8Array(Buffer.from(digits, 'hex'));
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

type ErrorClass = typeof StunDecodeError | typeof StunEncodeError | typeof UsageError;

function assertThrowsWith(fn: () => unknown, ErrorType: ErrorClass, code: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ErrorType, `expected ${ErrorType.name}, got ${String(err)}`);
    assert.ok(NatpunchError.is(err));
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

/** `fn` throws a StunDecodeError (code ERR_STUN_DECODE) whose message matches. */
export function assertDecodeError(fn: () => unknown, message: RegExp): void {
  assertThrowsWith(fn, StunDecodeError, 'ERR_STUN_DECODE', message);
}

/** `fn` throws a StunEncodeError (code ERR_STUN_ENCODE) whose message matches. */
export function assertEncodeError(fn: () => unknown, message: RegExp): void {
  assertThrowsWith(fn, StunEncodeError, 'ERR_STUN_ENCODE', message);
}

/** `fn` throws a UsageError (code ERR_USAGE) whose message matches. */
export function assertUsageError(fn: () => unknown, message: RegExp): void {
  assertThrowsWith(fn, UsageError, 'ERR_USAGE', message);
}
