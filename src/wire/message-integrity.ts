/**
 * MESSAGE-INTEGRITY (HMAC-SHA1, 20 bytes) and MESSAGE-INTEGRITY-SHA256 (HMAC-SHA256, 16-32 bytes
 * in steps of 4): computed over the message up to the attribute, with the header's length field
 * pointing at the end of the attribute, so that attributes after it (FINGERPRINT) do not
 * change the hash.
 * @see RFC 8489 §14.5, §14.6, §9.1.1, §9.2.2
 */

import { createHmac, timingSafeEqual } from 'node:crypto';
import { AttrType, HEADER_LENGTH } from './constants.js';
import { attributeOffsets, headerEndingAt } from './header.js';
import type { StunMessage } from './message.js';
import { StunDecodeError, StunEncodeError } from '../errors.js';

export type IntegrityAlgorithm = 'sha1' | 'sha256';

/** Value lengths: HMAC-SHA1 is 20 bytes; HMAC-SHA256 may be truncated to 16..32 in steps of 4. */
export const MESSAGE_INTEGRITY_LENGTH = 20;
export const MESSAGE_INTEGRITY_SHA256_LENGTH = 32;
export const MESSAGE_INTEGRITY_SHA256_MIN_LENGTH = 16;

/**
 * The HMAC for an integrity attribute at `offset` of `raw` with a value of `length` bytes
 * (truncated for SHA-256 below 32). Only `raw[0..offset)` is read.
 */
export function computeIntegrity(
  raw: Uint8Array,
  offset: number,
  algorithm: IntegrityAlgorithm,
  key: Uint8Array,
  length: number = algorithm === 'sha1' ? MESSAGE_INTEGRITY_LENGTH : MESSAGE_INTEGRITY_SHA256_LENGTH,
): Uint8Array {
  const hmac = createHmac(algorithm, key);
  hmac.update(headerEndingAt(raw, offset + 4 + length));
  hmac.update(raw.subarray(HEADER_LENGTH, offset));
  return new Uint8Array(hmac.digest().subarray(0, length));
}

function sha256LengthProblem(length: number): string | undefined {
  if (length < MESSAGE_INTEGRITY_SHA256_MIN_LENGTH || length > MESSAGE_INTEGRITY_SHA256_LENGTH || length % 4 !== 0) {
    return `value length ${length}, expected 16 to 32 in steps of 4`;
  }
  return undefined;
}

/** MESSAGE-INTEGRITY's typed codec: the 20 HMAC bytes, checked for length. @see RFC 8489 §14.5 */
export const messageIntegrity = {
  encode(hmac: Uint8Array): Uint8Array {
    if (hmac.length !== MESSAGE_INTEGRITY_LENGTH) {
      throw new StunEncodeError(`attribute MESSAGE-INTEGRITY: value length ${hmac.length}, expected 20`);
    }
    return Uint8Array.from(hmac);
  },
  decode(value: Uint8Array): Uint8Array {
    if (value.length !== MESSAGE_INTEGRITY_LENGTH) {
      throw new StunDecodeError(`attribute MESSAGE-INTEGRITY: value length ${value.length}, expected 20`);
    }
    return Uint8Array.from(value);
  },
};

/** MESSAGE-INTEGRITY-SHA256's typed codec: 16-32 HMAC bytes in steps of 4. @see RFC 8489 §14.6 */
export const messageIntegritySha256 = {
  encode(hmac: Uint8Array): Uint8Array {
    const problem = sha256LengthProblem(hmac.length);
    if (problem) throw new StunEncodeError(`attribute MESSAGE-INTEGRITY-SHA256: ${problem}`);
    return Uint8Array.from(hmac);
  },
  decode(value: Uint8Array): Uint8Array {
    const problem = sha256LengthProblem(value.length);
    if (problem) throw new StunDecodeError(`attribute MESSAGE-INTEGRITY-SHA256: ${problem}`);
    return Uint8Array.from(value);
  },
};

/** What `verifyIntegrity` concluded, and a sentence saying why. */
export interface IntegrityCheck {
  verdict: IntegrityAlgorithm | false | undefined;
  detail: string;
}

/**
 * Like `verifyIntegrity`, with a sentence naming the attribute checked and what failed.
 *
 * Which attribute counts (RFC 8489 §14.5, §14.6): after MESSAGE-INTEGRITY only
 * MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are processed; after MESSAGE-INTEGRITY-SHA256 only
 * FINGERPRINT. So the first MESSAGE-INTEGRITY-SHA256 is checked when present (and preferred,
 * as §9.2.4 asks of servers); a MESSAGE-INTEGRITY after it is ignored. Attributes after the
 * checked one are not covered by the HMAC and must be ignored by the caller; `coveredAttributes`
 * says how many of `msg.attributes` are.
 */
export function inspectIntegrity(msg: StunMessage, key: Uint8Array): IntegrityCheck & { coveredAttributes: number } {
  const sha256At = msg.attributes.findIndex((a) => a.type === AttrType.MessageIntegritySha256);
  const sha1At = msg.attributes.findIndex((a) => a.type === AttrType.MessageIntegrity);
  const useSha256 = sha256At >= 0;
  if (sha256At < 0 && sha1At < 0) {
    return { verdict: undefined, detail: 'no MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256 attribute', coveredAttributes: 0 };
  }
  const index = useSha256 ? sha256At : sha1At;
  const algorithm: IntegrityAlgorithm = useSha256 ? 'sha256' : 'sha1';
  const name = useSha256 ? 'MESSAGE-INTEGRITY-SHA256' : 'MESSAGE-INTEGRITY';
  const offset = attributeOffsets(msg.attributes)[index]!;
  const { value } = msg.attributes[index]!;
  const fail = (why: string): IntegrityCheck & { coveredAttributes: number } => ({
    verdict: false,
    detail: `${name} at offset ${offset}: ${why}`,
    coveredAttributes: index,
  });
  if (useSha256) {
    const problem = sha256LengthProblem(value.length);
    if (problem) return fail(problem);
  } else if (value.length !== MESSAGE_INTEGRITY_LENGTH) {
    return fail(`value length ${value.length}, expected 20`);
  }
  if (offset + 4 + value.length > msg.raw.length) return fail('lies outside raw');
  const expected = computeIntegrity(msg.raw, offset, algorithm, key, value.length);
  if (!timingSafeEqual(expected, value)) return fail('HMAC does not match the key');
  return { verdict: algorithm, detail: `${name} at offset ${offset} matches`, coveredAttributes: index };
}

/**
 * Checks message integrity with `key` (from `shortTermKey` or `longTermKey`): 'sha256' or
 * 'sha1' for the attribute that matched, `false` when it does not match or is malformed,
 * `undefined` when the message carries neither attribute. The comparison is constant-time.
 * @see RFC 8489 §14.5, §14.6
 */
export function verifyIntegrity(msg: StunMessage, key: Uint8Array): IntegrityAlgorithm | false | undefined {
  return inspectIntegrity(msg, key).verdict;
}
