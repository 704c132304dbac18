/**
 * The UTF-8 text attributes USERNAME, REALM, NONCE and SOFTWARE, with the RFC's limits enforced
 * both ways: what we send is within the "encoding" limit, what we accept within the larger
 * "decoding" limit RFC 8489 keeps for RFC 5389 peers.
 *
 * | attribute | characters | bytes sent | bytes accepted |
 * | USERNAME  | -          | < 509      | <= 763         |
 * | REALM     | < 128      | <= 509     | <= 763         |
 * | NONCE     | < 128      | <= 509     | <= 763         |
 * | SOFTWARE  | < 128      | <= 509     | <= 763         |
 * @see RFC 8489 §14.3, §14.9, §14.10, §14.14
 */

import { StunDecodeError, StunEncodeError } from '../errors.js';

export interface TextCodec {
  encode(s: string): Uint8Array;
  decode(value: Uint8Array): string;
}

export interface TextLimits {
  /** At most this many Unicode code points (none if absent). */
  maxCharacters?: number;
  maxEncodeBytes: number;
  maxDecodeBytes: number;
}

const encoder = new TextEncoder();
// fatal: malformed UTF-8 is an error, not U+FFFD; ignoreBOM: a leading U+FEFF is content.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function countCodePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** UTF-8 bytes of `s` within `limits`. `what` names the field in errors. */
export function writeUtf8(attribute: string, what: string, s: string, limits: TextLimits): Uint8Array {
  if (typeof s !== 'string') throw new StunEncodeError(`attribute ${attribute}: ${what} must be a string, got ${typeof s}`);
  if (LONE_SURROGATE.test(s)) throw new StunEncodeError(`attribute ${attribute}: ${what} has an unpaired surrogate, not encodable as UTF-8`);
  if (limits.maxCharacters !== undefined && countCodePoints(s) > limits.maxCharacters) {
    throw new StunEncodeError(`attribute ${attribute}: ${what} has ${countCodePoints(s)} characters, at most ${limits.maxCharacters}`);
  }
  const bytes = encoder.encode(s);
  if (bytes.length > limits.maxEncodeBytes) {
    throw new StunEncodeError(`attribute ${attribute}: ${what} is ${bytes.length} bytes of UTF-8, at most ${limits.maxEncodeBytes}`);
  }
  return bytes;
}

/** Text of UTF-8 `bytes` within `limits`. */
export function readUtf8(attribute: string, what: string, bytes: Uint8Array, limits: TextLimits): string {
  if (bytes.length > limits.maxDecodeBytes) {
    throw new StunDecodeError(`attribute ${attribute}: ${what} is ${bytes.length} bytes, at most ${limits.maxDecodeBytes}`);
  }
  let s: string;
  try {
    s = decoder.decode(bytes);
  } catch {
    throw new StunDecodeError(`attribute ${attribute}: ${what} is not valid UTF-8`);
  }
  if (limits.maxCharacters !== undefined && countCodePoints(s) > limits.maxCharacters) {
    throw new StunDecodeError(`attribute ${attribute}: ${what} has ${countCodePoints(s)} characters, at most ${limits.maxCharacters}`);
  }
  return s;
}

/** A codec for a text attribute with the given limits. */
export function textCodec(attribute: string, limits: TextLimits): TextCodec {
  return {
    encode: (s) => writeUtf8(attribute, 'value', s, limits),
    decode: (value) => readUtf8(attribute, 'value', value, limits),
  };
}

/** USERNAME: fewer than 509 bytes sent, up to 763 accepted. @see RFC 8489 §14.3 */
export const username: TextCodec = textCodec('USERNAME', { maxEncodeBytes: 508, maxDecodeBytes: 763 });
/** REALM. @see RFC 8489 §14.9 */
export const realm: TextCodec = textCodec('REALM', { maxCharacters: 127, maxEncodeBytes: 509, maxDecodeBytes: 763 });
/** NONCE. @see RFC 8489 §14.10 */
export const nonce: TextCodec = textCodec('NONCE', { maxCharacters: 127, maxEncodeBytes: 509, maxDecodeBytes: 763 });
/** SOFTWARE. @see RFC 8489 §14.14 */
export const software: TextCodec = textCodec('SOFTWARE', { maxCharacters: 127, maxEncodeBytes: 509, maxDecodeBytes: 763 });
