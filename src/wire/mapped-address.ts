/**
 * MAPPED-ADDRESS and the attributes that share its layout: OTHER-ADDRESS and RESPONSE-ORIGIN
 * (RFC 5780), ALTERNATE-SERVER.
 *
 *   | 0 0 0 0 0 0 0 0 |    Family     |           Port                |
 *   |                 Address (32 bits or 128 bits)                   |
 *
 * Family 0x01 is IPv4 (value length 8), 0x02 IPv6 (value length 20). The first byte is ignored
 * on receipt. The XOR-ed variants reuse this layout with a mask (see xor-mapped-address.ts).
 * @see RFC 8489 §14.1, §14.15; RFC 5780 §7.3, §7.4
 */

import { isIPv4, isIPv6 } from 'node:net';
import { ipFromBytes, ipToBytes, type TransportAddress } from './address.js';
import { readUint16, writeUint16 } from './header.js';
import { StunDecodeError, StunEncodeError } from '../errors.js';

const FAMILY_IPV4 = 0x01;
const FAMILY_IPV6 = 0x02;

/** Encode/decode pair of an address attribute. */
export interface AddressCodec {
  encode(a: TransportAddress): Uint8Array;
  decode(value: Uint8Array): TransportAddress;
}

/**
 * The value bytes for `a`, with port and address XOR-ed by `mask` (2 + 16 bytes: port mask
 * then address mask) when given. `name` is the attribute's wire name, for error messages.
 */
export function encodeAddressValue(name: string, a: TransportAddress, mask?: Uint8Array): Uint8Array {
  if (a === null || typeof a !== 'object') throw new StunEncodeError(`attribute ${name}: expected a transport address`);
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 0xffff) {
    throw new StunEncodeError(`attribute ${name}: port ${a.port} is not 0-65535`);
  }
  const fits = a.family === 4 ? isIPv4(a.address) : a.family === 6 ? isIPv6(a.address) && !a.address.includes('%') : false;
  if (!fits) throw new StunEncodeError(`attribute ${name}: "${a.address}" is not an IPv${a.family} address (family ${a.family})`);
  const ip = ipToBytes(a.address);
  const value = new Uint8Array(4 + ip.length);
  value[1] = a.family === 4 ? FAMILY_IPV4 : FAMILY_IPV6;
  writeUint16(value, 2, mask ? a.port ^ readUint16(mask, 0) : a.port);
  for (let i = 0; i < ip.length; i++) value[4 + i] = mask ? ip[i]! ^ mask[2 + i]! : ip[i]!;
  return value;
}

/** Inverse of `encodeAddressValue`. @throws StunDecodeError naming the attribute */
export function decodeAddressValue(name: string, value: Uint8Array, mask?: Uint8Array): TransportAddress {
  if (value.length !== 8 && value.length !== 20) {
    throw new StunDecodeError(`attribute ${name}: value length ${value.length}, expected 8 or 20`);
  }
  const family = value[1]!;
  if (family !== FAMILY_IPV4 && family !== FAMILY_IPV6) {
    throw new StunDecodeError(`attribute ${name}: address family 0x${family.toString(16).padStart(2, '0')}, expected 0x01 (IPv4) or 0x02 (IPv6)`, 1);
  }
  const expected = family === FAMILY_IPV4 ? 8 : 20;
  if (value.length !== expected) {
    throw new StunDecodeError(`attribute ${name}: value length ${value.length} for family IPv${family === FAMILY_IPV4 ? 4 : 6}, expected ${expected}`);
  }
  const ip = value.slice(4);
  if (mask) for (let i = 0; i < ip.length; i++) ip[i]! ^= mask[2 + i]!;
  const port = readUint16(value, 2) ^ (mask ? readUint16(mask, 0) : 0);
  return { family: family === FAMILY_IPV4 ? 4 : 6, address: ipFromBytes(ip), port };
}

/** A codec for an attribute laid out like MAPPED-ADDRESS, named `name` in errors. */
export function addressCodec(name: string): AddressCodec {
  return {
    encode: (a) => encodeAddressValue(name, a),
    decode: (value) => decodeAddressValue(name, value),
  };
}

/** MAPPED-ADDRESS. @see RFC 8489 §14.1 */
export const mappedAddress: AddressCodec = addressCodec('MAPPED-ADDRESS');
/** OTHER-ADDRESS: the server's alternate IP and port. @see RFC 5780 §7.4 */
export const otherAddress: AddressCodec = addressCodec('OTHER-ADDRESS');
/** RESPONSE-ORIGIN: where the response was sent from. @see RFC 5780 §7.3 */
export const responseOrigin: AddressCodec = addressCodec('RESPONSE-ORIGIN');
/** ALTERNATE-SERVER: where a 300 (Try Alternate) points. @see RFC 8489 §14.15 */
export const alternateServer: AddressCodec = addressCodec('ALTERNATE-SERVER');
