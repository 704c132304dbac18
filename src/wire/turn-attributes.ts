/**
 * TURN's small attributes: LIFETIME, CHANNEL-NUMBER, REQUESTED-TRANSPORT,
 * REQUESTED-ADDRESS-FAMILY (and ADDITIONAL-ADDRESS-FAMILY, same layout), EVEN-PORT. The address
 * attributes (XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS) live with XOR-MAPPED-ADDRESS; DATA is raw
 * bytes and DONT-FRAGMENT has no value.
 * @see RFC 8656 §18
 */

import { readUint16, readUint32, writeUint16, writeUint32 } from './header.js';
import { StunDecodeError, StunEncodeError } from '../errors.js';

function checkLength(name: string, value: Uint8Array, expected: number): void {
  if (value.length !== expected) throw new StunDecodeError(`attribute ${name}: value length ${value.length}, expected ${expected}`);
}

/** LIFETIME: seconds until the allocation expires, a 32-bit number. @see RFC 8656 §18.2 */
export const lifetime = {
  encode(seconds: number): Uint8Array {
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > 0xffffffff) throw new StunEncodeError(`attribute LIFETIME: ${seconds} is not a 32-bit number of seconds`);
    const value = new Uint8Array(4);
    writeUint32(value, 0, seconds);
    return value;
  },
  decode(value: Uint8Array): number {
    checkLength('LIFETIME', value, 4);
    return readUint32(value, 0);
  },
};

/** Channel numbers a client may bind: 0x4000 through 0x4FFF. @see RFC 8656 §12 */
export const MIN_CHANNEL = 0x4000;
export const MAX_CHANNEL = 0x4fff;
/**
 * RFC 5766 allowed 0x4000-0x7FFF, and clients still use the upper part (coturn's own test
 * client picks 0x5382). RFC 8656 reserved 0x5000-0x7FFF only so that RFC 7983 demultiplexers
 * sharing a port with DTLS-SRTP do not mistake them; a TURN server's port carries nothing else,
 * so it accepts the old range. @see RFC 5766 §11, RFC 8656 §12, RFC 7983 §7
 */
export const MAX_CHANNEL_RFC5766 = 0x7fff;

/** CHANNEL-NUMBER: 2 bytes of channel then 2 reserved (RFFU, sent zero, ignored). @see RFC 8656 §18.1 */
export const channelNumber = {
  encode(channel: number): Uint8Array {
    if (!Number.isInteger(channel) || channel < 0 || channel > 0xffff) throw new StunEncodeError(`attribute CHANNEL-NUMBER: ${channel} is not a 16-bit number`);
    const value = new Uint8Array(4);
    writeUint16(value, 0, channel);
    return value;
  },
  decode(value: Uint8Array): number {
    checkLength('CHANNEL-NUMBER', value, 4);
    return readUint16(value, 0);
  },
};

/** IANA protocol numbers REQUESTED-TRANSPORT carries: TURN relays UDP (17); RFC 6062 adds TCP (6). */
export const TRANSPORT_UDP = 17;
export const TRANSPORT_TCP = 6;

/** REQUESTED-TRANSPORT: 1 byte protocol then 3 reserved. @see RFC 8656 §18.7 */
export const requestedTransport = {
  encode(protocol: number): Uint8Array {
    if (!Number.isInteger(protocol) || protocol < 0 || protocol > 0xff) throw new StunEncodeError(`attribute REQUESTED-TRANSPORT: ${protocol} is not a protocol number`);
    return Uint8Array.of(protocol, 0, 0, 0);
  },
  decode(value: Uint8Array): number {
    checkLength('REQUESTED-TRANSPORT', value, 4);
    return value[0]!;
  },
};

/** REQUESTED-ADDRESS-FAMILY / ADDITIONAL-ADDRESS-FAMILY: 0x01 IPv4, 0x02 IPv6, then 3 reserved. @see RFC 8656 §18.8, §18.11 */
export const addressFamily = {
  encode(family: 4 | 6): Uint8Array {
    if (family !== 4 && family !== 6) throw new StunEncodeError(`attribute REQUESTED-ADDRESS-FAMILY: family ${String(family)}, expected 4 or 6`);
    return Uint8Array.of(family === 4 ? 0x01 : 0x02, 0, 0, 0);
  },
  /** 4, 6, or undefined for a family this implementation does not know (the server answers 440). */
  decode(value: Uint8Array): 4 | 6 | undefined {
    checkLength('REQUESTED-ADDRESS-FAMILY', value, 4);
    return value[0] === 0x01 ? 4 : value[0] === 0x02 ? 6 : undefined;
  },
};

/** EVEN-PORT: one byte whose top bit (R) asks to reserve the next port too. @see RFC 8656 §18.6 */
export const evenPort = {
  encode(reserve: boolean): Uint8Array {
    return Uint8Array.of(reserve ? 0x80 : 0);
  },
  decode(value: Uint8Array): { reserve: boolean } {
    checkLength('EVEN-PORT', value, 1);
    return { reserve: (value[0]! & 0x80) !== 0 };
  },
};
