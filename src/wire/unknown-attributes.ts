/**
 * UNKNOWN-ATTRIBUTES: the 16-bit types of the comprehension-required attributes a 420
 * (Unknown Attribute) error response refused.
 * @see RFC 8489 §14.13, §6.3.1
 */

import { readUint16, writeUint16 } from './header.js';
import { StunDecodeError, StunEncodeError } from '../errors.js';

export const unknownAttributes = {
  encode(types: number[]): Uint8Array {
    if (!Array.isArray(types)) throw new StunEncodeError('attribute UNKNOWN-ATTRIBUTES: expected an array of attribute types');
    if (types.length * 2 > 0xffff) throw new StunEncodeError(`attribute UNKNOWN-ATTRIBUTES: ${types.length} types do not fit`);
    const value = new Uint8Array(types.length * 2);
    types.forEach((type, i) => {
      if (!Number.isInteger(type) || type < 0 || type > 0xffff) {
        throw new StunEncodeError(`attribute UNKNOWN-ATTRIBUTES: type ${type} is not a 16-bit number`);
      }
      writeUint16(value, 2 * i, type);
    });
    return value;
  },
  decode(value: Uint8Array): number[] {
    if (value.length % 2 !== 0) {
      throw new StunDecodeError(`attribute UNKNOWN-ATTRIBUTES: value length ${value.length}, expected a multiple of 2`);
    }
    const types: number[] = [];
    for (let i = 0; i < value.length; i += 2) types.push(readUint16(value, i));
    return types;
  },
};
