/**
 * CHANGE-REQUEST: asks an RFC 5780 server to answer from its other IP ("A", 0x04) and/or
 * other port ("B", 0x02). The other 30 bits are unused; they are sent as zero and ignored.
 * @see RFC 5780 §7.2
 */

import { readUint32, writeUint32 } from './header.js';
import { StunDecodeError, StunEncodeError } from '../errors.js';

const CHANGE_IP = 0x04;
const CHANGE_PORT = 0x02;

export interface ChangeRequest {
  changeIp: boolean;
  changePort: boolean;
}

export const changeRequest = {
  encode(v: ChangeRequest): Uint8Array {
    if (v === null || typeof v !== 'object' || typeof v.changeIp !== 'boolean' || typeof v.changePort !== 'boolean') {
      throw new StunEncodeError('attribute CHANGE-REQUEST: expected { changeIp: boolean, changePort: boolean }');
    }
    const value = new Uint8Array(4);
    writeUint32(value, 0, (v.changeIp ? CHANGE_IP : 0) | (v.changePort ? CHANGE_PORT : 0));
    return value;
  },
  decode(value: Uint8Array): ChangeRequest {
    if (value.length !== 4) throw new StunDecodeError(`attribute CHANGE-REQUEST: value length ${value.length}, expected 4`);
    const flags = readUint32(value, 0);
    return { changeIp: (flags & CHANGE_IP) !== 0, changePort: (flags & CHANGE_PORT) !== 0 };
  },
};
