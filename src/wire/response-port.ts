/**
 * RESPONSE-PORT: the port the client wants the response sent to; 2 bytes of port then 2 bytes
 * reserved for future use (sent as zero, ignored).
 * @see RFC 5780 §7.5
 */

import { readUint16, writeUint16 } from './header.js';
import { StunDecodeError, StunEncodeError } from '../errors.js';

export const responsePort = {
  encode(port: number): Uint8Array {
    if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
      throw new StunEncodeError(`attribute RESPONSE-PORT: port ${port} is not 0-65535`);
    }
    const value = new Uint8Array(4);
    writeUint16(value, 0, port);
    return value;
  },
  decode(value: Uint8Array): number {
    if (value.length !== 4) throw new StunDecodeError(`attribute RESPONSE-PORT: value length ${value.length}, expected 4`);
    return readUint16(value, 0);
  },
};
