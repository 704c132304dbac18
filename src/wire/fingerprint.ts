/**
 * FINGERPRINT: CRC-32 (ITU V.42, the polynomial of gzip and Ethernet) of the message up to the
 * attribute, XORed with 0x5354554e. A table-driven CRC because `zlib.crc32` only exists from
 * Node 22.2 (STYLE §13).
 * @see RFC 8489 §14.7; RFC 1952 §8
 */

import { AttrType, FINGERPRINT_XOR, HEADER_LENGTH } from './constants.js';
import { attributeOffsets, headerEndingAt, readUint32, writeUint32 } from './header.js';
import type { StunMessage } from './message.js';
import { StunDecodeError, StunEncodeError } from '../errors.js';

const CRC_TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * CRC-32 of `data`; pass a previous result as `crc` to continue over a second chunk.
 * `crc32(b) === crc32(b.subarray(k), crc32(b.subarray(0, k)))`.
 */
export function crc32(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** The 4-byte FINGERPRINT value for an attribute at `offset` of `raw` (the rest of `raw` is ignored). */
export function computeFingerprint(raw: Uint8Array, offset: number): number {
  const header = headerEndingAt(raw, offset + 8);
  return (crc32(raw.subarray(HEADER_LENGTH, offset), crc32(header)) ^ FINGERPRINT_XOR) >>> 0;
}

/** FINGERPRINT's typed codec: the value is the 32-bit CRC. @see RFC 8489 §14.7 */
export const fingerprint = {
  encode(crc: number): Uint8Array {
    if (!Number.isInteger(crc) || crc < 0 || crc > 0xffffffff) {
      throw new StunEncodeError(`attribute FINGERPRINT: value ${crc} is not a 32-bit unsigned integer`);
    }
    const value = new Uint8Array(4);
    writeUint32(value, 0, crc);
    return value;
  },
  decode(value: Uint8Array): number {
    if (value.length !== 4) throw new StunDecodeError(`attribute FINGERPRINT: value length ${value.length}, expected 4`);
    return readUint32(value, 0);
  },
};

/** What `verifyFingerprint` concluded, and why, for logs and error messages. */
export interface FingerprintCheck {
  verdict: boolean | undefined;
  detail: string;
}

/** Like `verifyFingerprint`, with a sentence saying what was checked and what failed. */
export function inspectFingerprint(msg: StunMessage): FingerprintCheck {
  const index = msg.attributes.findIndex((a) => a.type === AttrType.Fingerprint);
  if (index < 0) return { verdict: undefined, detail: 'no FINGERPRINT attribute' };
  const offset = attributeOffsets(msg.attributes)[index]!;
  const { value } = msg.attributes[index]!;
  if (index !== msg.attributes.length - 1) {
    return { verdict: false, detail: `FINGERPRINT at offset ${offset} is not the last attribute (RFC 8489 §14.7)` };
  }
  if (value.length !== 4) {
    return { verdict: false, detail: `FINGERPRINT at offset ${offset}: value length ${value.length}, expected 4` };
  }
  if (offset + 8 > msg.raw.length) return { verdict: false, detail: `FINGERPRINT at offset ${offset} lies outside raw` };
  const expected = computeFingerprint(msg.raw, offset);
  const got = readUint32(value, 0);
  return expected === got
    ? { verdict: true, detail: `FINGERPRINT at offset ${offset} matches` }
    : {
        verdict: false,
        detail: `FINGERPRINT at offset ${offset}: got 0x${got.toString(16).padStart(8, '0')}, expected 0x${expected.toString(16).padStart(8, '0')}`,
      };
}

/**
 * Checks FINGERPRINT: `undefined` when absent; `false` when wrong, malformed, or not the last
 * attribute. @see RFC 8489 §14.7
 */
export function verifyFingerprint(msg: StunMessage): boolean | undefined {
  return inspectFingerprint(msg).verdict;
}
