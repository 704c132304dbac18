/**
 * XOR-MAPPED-ADDRESS (and TURN's XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS): MAPPED-ADDRESS's
 * layout with the port XOR-ed by the magic cookie's top 16 bits and the address by the magic
 * cookie (IPv4) or the cookie followed by the transaction id (IPv6), so that NATs rewriting
 * addresses they find in payloads leave it alone.
 * @see RFC 8489 §14.2; RFC 8656 §18.3, §18.5
 */

import type { TransportAddress } from './address.js';
import { AttrType, LEGACY_XOR_MAPPED_ADDRESS, MAGIC_COOKIE, TRANSACTION_ID_LENGTH } from './constants.js';
import { writeUint32 } from './header.js';
import { decodeAddressValue, encodeAddressValue, mappedAddress } from './mapped-address.js';
import { getAttribute, type StunMessage } from './message.js';
import { StunDecodeError, StunEncodeError } from '../errors.js';

/** Encode/decode pair of an XOR-ed address attribute; both need the message's transaction id. */
export interface XorAddressCodec {
  encode(a: TransportAddress, transactionId: Uint8Array): Uint8Array;
  decode(value: Uint8Array, transactionId: Uint8Array): TransportAddress;
}

/** Port mask (2 bytes, the cookie's top half) followed by the address mask (cookie + id). */
function xorMask(transactionId: Uint8Array): Uint8Array {
  const mask = new Uint8Array(2 + 4 + TRANSACTION_ID_LENGTH);
  writeUint32(mask, 2, MAGIC_COOKIE);
  mask[0] = mask[2]!;
  mask[1] = mask[3]!;
  mask.set(transactionId, 6);
  return mask;
}

function checkTransactionId(name: string, transactionId: Uint8Array, ErrorClass: typeof StunDecodeError | typeof StunEncodeError): void {
  if (!(transactionId instanceof Uint8Array) || transactionId.length !== TRANSACTION_ID_LENGTH) {
    throw new ErrorClass(`attribute ${name}: transaction id must be 12 bytes, got ${transactionId?.length}`);
  }
}

/** A codec for an attribute laid out like XOR-MAPPED-ADDRESS, named `name` in errors. */
export function xorAddressCodec(name: string): XorAddressCodec {
  return {
    encode(a, transactionId) {
      checkTransactionId(name, transactionId, StunEncodeError);
      return encodeAddressValue(name, a, xorMask(transactionId));
    },
    decode(value, transactionId) {
      checkTransactionId(name, transactionId, StunDecodeError);
      return decodeAddressValue(name, value, xorMask(transactionId));
    },
  };
}

/** XOR-MAPPED-ADDRESS. @see RFC 8489 §14.2 */
export const xorMappedAddress: XorAddressCodec = xorAddressCodec('XOR-MAPPED-ADDRESS');
/** XOR-PEER-ADDRESS. @see RFC 8656 §18.3 */
export const xorPeerAddress: XorAddressCodec = xorAddressCodec('XOR-PEER-ADDRESS');
/** XOR-RELAYED-ADDRESS. @see RFC 8656 §18.5 */
export const xorRelayedAddress: XorAddressCodec = xorAddressCodec('XOR-RELAYED-ADDRESS');

const legacyXorMappedAddress: XorAddressCodec = xorAddressCodec('XOR-MAPPED-ADDRESS(0x8020)');

/**
 * The reflexive transport address a Binding response reports: XOR-MAPPED-ADDRESS; else, unless
 * `strict`, the pre-RFC 5389 0x8020 XOR-MAPPED-ADDRESS some servers still send, then the plain
 * MAPPED-ADDRESS of RFC 3489-era servers (RFC 8489 §14.1 keeps it for them). `undefined` when
 * none is present. @throws StunDecodeError when the attribute found is malformed
 * @see RFC 8489 §14.1, §14.2; STYLE §7
 */
export function reflexiveAddress(msg: StunMessage, options?: { strict?: boolean }): TransportAddress | undefined {
  const xored = getAttribute(msg, AttrType.XorMappedAddress);
  if (xored) return xorMappedAddress.decode(xored, msg.transactionId);
  if (options?.strict) return undefined;
  const legacy = getAttribute(msg, LEGACY_XOR_MAPPED_ADDRESS);
  if (legacy) return legacyXorMappedAddress.decode(legacy, msg.transactionId);
  const plain = getAttribute(msg, AttrType.MappedAddress);
  return plain ? mappedAddress.decode(plain) : undefined;
}
