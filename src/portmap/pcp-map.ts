/**
 * PCP's MAP opcode: the data after the common header in a MAP request and response.
 * @see RFC 6887 §11.1
 */

import { PortMapDecodeError } from '../errors.js';
import { checkPort, type MappingProtocol } from './nat-pmp-message.js';
import {
  PcpOpcode, decodeOptions, pcpAddressBytes, pcpAddressText, type PcpOption, type PcpResponse,
} from './pcp-message.js';

/** The MAP opcode data: nonce, protocol, reserved, two ports and an address. @see RFC 6887 §11.1 */
export const MAP_BODY = 36;
/** The mapping nonce: 96 random bits tying responses and renewals to one mapping. @see RFC 6887 §11.1 */
export const MAPPING_NONCE = 12;
/** "the address-family-specific all-zeros address": no preference. @see RFC 6887 §11.1 */
export const ANY_IPV4 = '0.0.0.0';

/** IANA protocol numbers, as MAP's Protocol field carries them. */
export const IANA_PROTOCOL: Readonly<Record<MappingProtocol, number>> = { udp: 17, tcp: 6 };

export interface PcpMap {
  nonce: Uint8Array;
  protocol: MappingProtocol;
  internalPort: number;
  /** In a request the suggested external port (0: no preference); in a response the assigned one. */
  externalPort: number;
  /** In a request the suggested external address; in a response the assigned one. */
  externalAddress: string;
}

export interface PcpMapResponse extends Omit<PcpResponse, 'payload'>, PcpMap {
  options: PcpOption[];
}

export function encodeMapBody(map: PcpMap): Uint8Array {
  if (map.nonce.length !== MAPPING_NONCE) throw new RangeError(`PCP MAP: nonce of ${map.nonce.length} bytes, expected ${MAPPING_NONCE}`);
  checkPort('PCP MAP internal port', map.internalPort, 0);
  checkPort('PCP MAP external port', map.externalPort, 0);
  const out = new Uint8Array(MAP_BODY);
  out.set(map.nonce, 0);
  out[12] = IANA_PROTOCOL[map.protocol];
  // bytes 13-15: Reserved.
  out[16] = map.internalPort >> 8;
  out[17] = map.internalPort & 0xff;
  out[18] = map.externalPort >> 8;
  out[19] = map.externalPort & 0xff;
  out.set(pcpAddressBytes(map.externalAddress), 20);
  return out;
}

/** @throws PortMapDecodeError for a body shorter than 36 bytes or a protocol other than UDP/TCP */
export function decodeMapBody(bytes: Uint8Array): PcpMap {
  if (bytes.length < MAP_BODY) throw new PortMapDecodeError(`PCP MAP: ${bytes.length} bytes of opcode data, expected ${MAP_BODY}`, bytes.length);
  const number = bytes[12]!;
  const protocol = number === IANA_PROTOCOL.udp ? 'udp' : number === IANA_PROTOCOL.tcp ? 'tcp' : undefined;
  if (protocol === undefined) throw new PortMapDecodeError(`PCP MAP: protocol ${number}, expected 17 (UDP) or 6 (TCP), the only ones this client maps`, 12);
  return {
    nonce: bytes.slice(0, MAPPING_NONCE),
    protocol,
    internalPort: (bytes[16]! << 8) | bytes[17]!,
    externalPort: (bytes[18]! << 8) | bytes[19]!,
    externalAddress: pcpAddressText(bytes.subarray(20, 36)),
  };
}

/**
 * A MAP response from a decoded PCP response.
 * @throws PortMapDecodeError if it answers another opcode or its data or options are malformed
 */
export function decodeMapResponse(response: PcpResponse): PcpMapResponse {
  if (response.opcode !== PcpOpcode.Map) throw new PortMapDecodeError(`PCP response: opcode ${response.opcode}, expected ${PcpOpcode.Map} (MAP)`, 1);
  const { payload, ...header } = response;
  return { ...header, ...decodeMapBody(payload), options: decodeOptions(payload.subarray(MAP_BODY), 24 + MAP_BODY) };
}
