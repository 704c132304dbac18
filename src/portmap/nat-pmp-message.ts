/**
 * NAT-PMP messages: the external-address request and response, and the map request and response
 * for UDP and TCP. Every field is big-endian; a request is at most 12 bytes, a response 16.
 * Pure encode/decode, no I/O (STYLE §1).
 * @see RFC 6886 §3.2 (external address), §3.3 (mapping), §3.5 (result codes)
 */

import { PortMapDecodeError } from '../errors.js';
import { ipFromBytes, ipToBytes } from '../wire/address.js';

/** The only NAT-PMP version. A response whose first byte is 0 is NAT-PMP, 2 is PCP. @see RFC 6886 §3.2 */
export const NAT_PMP_VERSION = 0;
/** The gateway's NAT-PMP (and PCP) port. @see RFC 6886 §3.1 */
export const NAT_PMP_PORT = 5351;
/** A response's opcode is the request's plus 128. @see RFC 6886 §3.2 */
export const RESPONSE_BIT = 128;

export const NatPmpOpcode = {
  ExternalAddress: 0,
  MapUdp: 1,
  MapTcp: 2,
} as const;
export type NatPmpOpcode = (typeof NatPmpOpcode)[keyof typeof NatPmpOpcode];

/** @see RFC 6886 §3.5 */
export const NatPmpResultCode = {
  Success: 0,
  UnsupportedVersion: 1,
  /** "Not Authorized/Refused (e.g., box supports mapping, but user has turned feature off)". */
  NotAuthorized: 2,
  /** "Network Failure (e.g., NAT box itself has not obtained a DHCP lease)". */
  NetworkFailure: 3,
  OutOfResources: 4,
  UnsupportedOpcode: 5,
} as const;

export const NAT_PMP_RESULT_NAMES: Readonly<Record<number, string>> = {
  0: 'Success',
  1: 'Unsupported Version',
  2: 'Not Authorized/Refused',
  3: 'Network Failure',
  4: 'Out of resources',
  5: 'Unsupported opcode',
};

export function natPmpResultName(code: number): string {
  return NAT_PMP_RESULT_NAMES[code] ?? `result code ${code}`;
}

/** The transport protocol a port mapping is for. */
export type MappingProtocol = 'udp' | 'tcp';

/** A map request. `lifetimeSeconds` 0 with `suggestedExternalPort` 0 deletes the mapping. @see RFC 6886 §3.3, §3.4 */
export interface NatPmpMapRequest {
  protocol: MappingProtocol;
  internalPort: number;
  suggestedExternalPort: number;
  lifetimeSeconds: number;
}

/** The part every response starts with: enough to read a failure. */
export interface NatPmpResponseHeader {
  /** The request's opcode (the response carries it plus 128). */
  opcode: number;
  resultCode: number;
  /** "Seconds Since Start of Epoch": how long the gateway has kept its mappings. @see RFC 6886 §3.6 */
  epochSeconds: number;
}

export interface NatPmpExternalAddressResponse extends NatPmpResponseHeader {
  opcode: typeof NatPmpOpcode.ExternalAddress;
  externalAddress: string;
}

export interface NatPmpMapResponse extends NatPmpResponseHeader {
  opcode: typeof NatPmpOpcode.MapUdp | typeof NatPmpOpcode.MapTcp;
  internalPort: number;
  mappedExternalPort: number;
  lifetimeSeconds: number;
}

export type NatPmpResponse = NatPmpResponseHeader | NatPmpExternalAddressResponse | NatPmpMapResponse;

/** The external-address request: version and opcode, two bytes. @see RFC 6886 §3.2 */
export function encodeExternalAddressRequest(): Uint8Array {
  return Uint8Array.of(NAT_PMP_VERSION, NatPmpOpcode.ExternalAddress);
}

export function mapOpcode(protocol: MappingProtocol): NatPmpOpcode {
  return protocol === 'udp' ? NatPmpOpcode.MapUdp : NatPmpOpcode.MapTcp;
}

/** @see RFC 6886 §3.3 */
export function encodeMapRequest(request: NatPmpMapRequest): Uint8Array {
  checkPort('internal port', request.internalPort, 1);
  checkPort('suggested external port', request.suggestedExternalPort, 0);
  checkUint32('requested lifetime', request.lifetimeSeconds);
  const out = new Uint8Array(12);
  const view = new DataView(out.buffer);
  out[0] = NAT_PMP_VERSION;
  out[1] = mapOpcode(request.protocol);
  // bytes 2-3: Reserved, MUST be zero.
  view.setUint16(4, request.internalPort);
  view.setUint16(6, request.suggestedExternalPort);
  view.setUint32(8, request.lifetimeSeconds);
  return out;
}

export function encodeExternalAddressResponse(response: Omit<NatPmpExternalAddressResponse, 'opcode'>): Uint8Array {
  const out = responseHeader(NatPmpOpcode.ExternalAddress, response, 12);
  out.set(ipv4Bytes(response.externalAddress), 8);
  return out;
}

export function encodeMapResponse(response: NatPmpMapResponse): Uint8Array {
  const out = responseHeader(response.opcode, response, 16);
  const view = new DataView(out.buffer);
  checkPort('internal port', response.internalPort, 0);
  checkPort('mapped external port', response.mappedExternalPort, 0);
  checkUint32('lifetime', response.lifetimeSeconds);
  view.setUint16(8, response.internalPort);
  view.setUint16(10, response.mappedExternalPort);
  view.setUint32(12, response.lifetimeSeconds);
  return out;
}

/** An error response: only the 8-byte header is defined. @see RFC 6886 §3.5 */
export function encodeErrorResponse(header: NatPmpResponseHeader): Uint8Array {
  if (header.resultCode === NatPmpResultCode.Success) throw new RangeError('NAT-PMP error response: result code 0 is Success, not an error');
  return responseHeader(header.opcode, header, 8);
}

/**
 * Reads a NAT-PMP response. A non-zero result code may come as the bare 8-byte header (RFC 6886
 * §3.5 defines nothing after it); a success must have exactly its opcode's length.
 * @throws PortMapDecodeError saying which field was wrong
 */
export function decodeNatPmpResponse(bytes: Uint8Array): NatPmpResponse {
  if (bytes.length < 8) throw new PortMapDecodeError(`NAT-PMP response: ${bytes.length} bytes, expected at least 8`, bytes.length);
  if (bytes[0] !== NAT_PMP_VERSION) throw new PortMapDecodeError(`NAT-PMP response: version ${bytes[0]}, expected ${NAT_PMP_VERSION}`, 0);
  const op = bytes[1]!;
  if (op < RESPONSE_BIT) throw new PortMapDecodeError(`NAT-PMP response: opcode ${op} is a request (responses are 128 + opcode)`, 1);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header: NatPmpResponseHeader = { opcode: op - RESPONSE_BIT, resultCode: view.getUint16(2), epochSeconds: view.getUint32(4) };
  if (header.resultCode !== NatPmpResultCode.Success) return header;
  switch (header.opcode) {
    case NatPmpOpcode.ExternalAddress:
      expectLength(bytes, 12, 'external address');
      return { ...header, opcode: NatPmpOpcode.ExternalAddress, externalAddress: ipFromBytes(bytes.subarray(8, 12)) };
    case NatPmpOpcode.MapUdp:
    case NatPmpOpcode.MapTcp:
      expectLength(bytes, 16, header.opcode === NatPmpOpcode.MapUdp ? 'UDP map' : 'TCP map');
      return {
        ...header,
        opcode: header.opcode,
        internalPort: view.getUint16(8),
        mappedExternalPort: view.getUint16(10),
        lifetimeSeconds: view.getUint32(12),
      };
    default:
      throw new PortMapDecodeError(`NAT-PMP response: success for opcode ${header.opcode}, which this client never sends (0, 1, 2)`, 1);
  }
}

function responseHeader(opcode: number, header: Omit<NatPmpResponseHeader, 'opcode'>, length: number): Uint8Array {
  if (!Number.isInteger(opcode) || opcode < 0 || opcode >= RESPONSE_BIT) throw new RangeError(`NAT-PMP response: opcode ${opcode} is not 0-127`);
  if (!Number.isInteger(header.resultCode) || header.resultCode < 0 || header.resultCode > 0xffff) throw new RangeError(`NAT-PMP response: result code ${header.resultCode} is not 0-65535`);
  checkUint32('seconds since start of epoch', header.epochSeconds);
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  out[0] = NAT_PMP_VERSION;
  out[1] = opcode + RESPONSE_BIT;
  view.setUint16(2, header.resultCode);
  view.setUint32(4, header.epochSeconds);
  return out;
}

function expectLength(bytes: Uint8Array, length: number, what: string): void {
  if (bytes.length !== length) throw new PortMapDecodeError(`NAT-PMP ${what} response: ${bytes.length} bytes, expected ${length}`, Math.min(bytes.length, length));
}

function ipv4Bytes(address: string): Uint8Array {
  const bytes = ipToBytes(address);
  if (bytes.length !== 4) throw new RangeError(`NAT-PMP: external address ${address} is not IPv4 (NAT-PMP carries IPv4 only)`);
  return bytes;
}

export function checkPort(what: string, port: number, min: number): void {
  if (!Number.isInteger(port) || port < min || port > 0xffff) throw new RangeError(`${what} ${port} is not an integer ${min}-65535`);
}

export function checkUint32(what: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`${what} ${value} is not an integer 0-4294967295`);
}
