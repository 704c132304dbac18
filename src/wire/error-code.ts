/**
 * ERROR-CODE: 21 reserved bits, the hundreds digit (class, 3-6) in 3 bits, the rest (0-99) in
 * 8 bits, then a UTF-8 reason phrase of fewer than 128 characters (at most 509 bytes sent,
 * 763 accepted). Reserved bits are ignored on receipt.
 * @see RFC 8489 §14.8
 */

import { readUtf8, writeUtf8 } from './text-attributes.js';
import { StunDecodeError, StunEncodeError } from '../errors.js';

export interface ErrorCodeValue {
  code: number;
  reason: string;
}

const LIMITS = { maxCharacters: 127, maxEncodeBytes: 509, maxDecodeBytes: 763 };

export const errorCode = {
  encode(v: ErrorCodeValue): Uint8Array {
    if (v === null || typeof v !== 'object') throw new StunEncodeError('attribute ERROR-CODE: expected { code, reason }');
    if (!Number.isInteger(v.code) || v.code < 300 || v.code > 699) {
      throw new StunEncodeError(`attribute ERROR-CODE: code ${v.code} is not 300-699`);
    }
    const reason = writeUtf8('ERROR-CODE', 'reason phrase', v.reason, LIMITS);
    const value = new Uint8Array(4 + reason.length);
    value[2] = Math.floor(v.code / 100);
    value[3] = v.code % 100;
    value.set(reason, 4);
    return value;
  },
  decode(value: Uint8Array): ErrorCodeValue {
    if (value.length < 4) throw new StunDecodeError(`attribute ERROR-CODE: value length ${value.length}, expected at least 4`);
    const errorClass = value[2]! & 0x07;
    const number = value[3]!;
    if (errorClass < 3 || errorClass > 6) throw new StunDecodeError(`attribute ERROR-CODE: class ${errorClass}, expected 3-6`, 2);
    if (number > 99) throw new StunDecodeError(`attribute ERROR-CODE: number ${number}, expected 0-99`, 3);
    const reason = readUtf8('ERROR-CODE', 'reason phrase', value.subarray(4), LIMITS);
    return { code: errorClass * 100 + number, reason };
  },
};
