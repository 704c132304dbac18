/**
 * PCP's common request and response headers and its options. Opcode-specific data (MAP:
 * pcp-map.ts) sits between the header and the options. Pure encode/decode, no I/O.
 * @see RFC 6887 §7 (common formats), §7.3 (options), §7.4 (result codes)
 */

import { PortMapDecodeError } from '../errors.js';
import { checkUint32 } from './nat-pmp-message.js';
import { ipFromBytes, ipToBytes } from '../wire/address.js';

export const PCP_VERSION = 2;
/** PCP messages are at most 1100 bytes. @see RFC 6887 §7 */
export const PCP_MAX_MESSAGE = 1100;
export const PCP_HEADER = 24;
/** The R bit: set in responses. @see RFC 6887 §7.1 */
const R_BIT = 0x80;

export const PcpOpcode = {
  Announce: 0,
  Map: 1,
  Peer: 2,
} as const;

/** @see RFC 6887 §7.4 */
export const PcpResultCode = {
  Success: 0,
  UnsuppVersion: 1,
  NotAuthorized: 2,
  MalformedRequest: 3,
  UnsuppOpcode: 4,
  UnsuppOption: 5,
  MalformedOption: 6,
  NetworkFailure: 7,
  NoResources: 8,
  UnsuppProtocol: 9,
  UserExQuota: 10,
  CannotProvideExternal: 11,
  AddressMismatch: 12,
  ExcessiveRemotePeers: 13,
} as const;

export const PCP_RESULT_NAMES: Readonly<Record<number, string>> = {
  0: 'SUCCESS', 1: 'UNSUPP_VERSION', 2: 'NOT_AUTHORIZED', 3: 'MALFORMED_REQUEST', 4: 'UNSUPP_OPCODE',
  5: 'UNSUPP_OPTION', 6: 'MALFORMED_OPTION', 7: 'NETWORK_FAILURE', 8: 'NO_RESOURCES', 9: 'UNSUPP_PROTOCOL',
  10: 'USER_EX_QUOTA', 11: 'CANNOT_PROVIDE_EXTERNAL', 12: 'ADDRESS_MISMATCH', 13: 'EXCESSIVE_REMOTE_PEERS',
};

export function pcpResultName(code: number): string {
  return PCP_RESULT_NAMES[code] ?? `result code ${code}`;
}

/** @see RFC 6887 §7.3, §13 */
export const PcpOptionCode = {
  ThirdParty: 1,
  PreferFailure: 2,
  Filter: 3,
} as const;

/** An option: its code and its data without padding. Codes 0-127 are mandatory to process. @see RFC 6887 §7.3 */
export interface PcpOption {
  code: number;
  data: Uint8Array;
}

export interface PcpRequestHeader {
  opcode: number;
  requestedLifetimeSeconds: number;
  /** The client's own IP address (IPv4 as ::ffff:a.b.c.d on the wire). @see RFC 6887 §7.1 */
  clientAddress: string;
}

export interface PcpResponseHeader {
  /** The request's opcode (the response sets the R bit beside it). */
  opcode: number;
  resultCode: number;
  /** On success the mapping's lifetime; on an error how long the error is likely to last. @see RFC 6887 §7.2, §15 */
  lifetimeSeconds: number;
  /** The server's epoch time: seconds since its mappings were last lost. @see RFC 6887 §8.5 */
  epochSeconds: number;
}

export interface PcpRequest extends PcpRequestHeader {
  /** Opcode-specific data; a multiple of 4 bytes. */
  body: Uint8Array;
  options: PcpOption[];
}

export interface PcpResponse extends PcpResponseHeader {
  /** Opcode-specific data followed by the options, unparsed (its length depends on the opcode). */
  payload: Uint8Array;
}

/** 16 bytes of an address; IPv4 as the IPv4-mapped IPv6 address. @see RFC 6887 §5 ("IPv4-mapped IPv6 address") */
export function pcpAddressBytes(address: string): Uint8Array {
  const bytes = ipToBytes(address);
  if (bytes.length === 16) return bytes;
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(bytes, 12);
  return out;
}

/** The text of 16 PCP address bytes: IPv4-mapped ones as a dotted quad. */
export function pcpAddressText(bytes: Uint8Array): string {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return ipFromBytes(bytes);
  return bytes[10] === 0xff && bytes[11] === 0xff ? ipFromBytes(bytes.subarray(12, 16)) : ipFromBytes(bytes);
}

/** @see RFC 6887 §7.1 */
export function encodePcpRequest(request: PcpRequest): Uint8Array {
  checkOpcode(request.opcode);
  checkUint32('PCP requested lifetime', request.requestedLifetimeSeconds);
  const options = encodeOptions(request.options);
  const out = new Uint8Array(PCP_HEADER + request.body.length + options.length);
  if (request.body.length % 4 !== 0) throw new RangeError(`PCP request: opcode data of ${request.body.length} bytes is not a multiple of 4`);
  if (out.length > PCP_MAX_MESSAGE) throw new RangeError(`PCP request: ${out.length} bytes, more than the ${PCP_MAX_MESSAGE} PCP allows`);
  const view = new DataView(out.buffer);
  out[0] = PCP_VERSION;
  out[1] = request.opcode; // R = 0
  // bytes 2-3: Reserved, MUST be zero.
  view.setUint32(4, request.requestedLifetimeSeconds);
  out.set(pcpAddressBytes(request.clientAddress), 8);
  out.set(request.body, PCP_HEADER);
  out.set(options, PCP_HEADER + request.body.length);
  return out;
}

/** @see RFC 6887 §7.2 */
export function encodePcpResponse(response: PcpResponseHeader & { body: Uint8Array; options?: PcpOption[] }): Uint8Array {
  checkOpcode(response.opcode);
  if (!Number.isInteger(response.resultCode) || response.resultCode < 0 || response.resultCode > 0xff) throw new RangeError(`PCP response: result code ${response.resultCode} is not 0-255`);
  checkUint32('PCP lifetime', response.lifetimeSeconds);
  checkUint32('PCP epoch time', response.epochSeconds);
  const options = encodeOptions(response.options ?? []);
  const out = new Uint8Array(PCP_HEADER + response.body.length + options.length);
  const view = new DataView(out.buffer);
  out[0] = PCP_VERSION;
  out[1] = R_BIT | response.opcode;
  // byte 2: Reserved.
  out[3] = response.resultCode;
  view.setUint32(4, response.lifetimeSeconds);
  view.setUint32(8, response.epochSeconds);
  // bytes 12-23: Reserved.
  out.set(response.body, PCP_HEADER);
  out.set(options, PCP_HEADER + response.body.length);
  return out;
}

/**
 * Reads a PCP response header, as RFC 6887 §8.3 validates one: 24 to 1100 bytes, a multiple of
 * 4, version 2, the R bit set.
 * @throws PortMapDecodeError saying which check failed
 */
export function decodePcpResponse(bytes: Uint8Array): PcpResponse {
  if (bytes.length < PCP_HEADER) throw new PortMapDecodeError(`PCP response: ${bytes.length} bytes, expected at least ${PCP_HEADER}`, bytes.length);
  if (bytes.length > PCP_MAX_MESSAGE) throw new PortMapDecodeError(`PCP response: ${bytes.length} bytes, more than ${PCP_MAX_MESSAGE}`, PCP_MAX_MESSAGE);
  if (bytes.length % 4 !== 0) throw new PortMapDecodeError(`PCP response: ${bytes.length} bytes, not a multiple of 4`, bytes.length);
  if (bytes[0] !== PCP_VERSION) throw new PortMapDecodeError(`PCP response: version ${bytes[0]}, expected ${PCP_VERSION}`, 0);
  if ((bytes[1]! & R_BIT) === 0) throw new PortMapDecodeError('PCP response: R bit is 0 (a request), expected 1', 1);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    opcode: bytes[1]! & ~R_BIT,
    resultCode: bytes[3]!,
    lifetimeSeconds: view.getUint32(4),
    epochSeconds: view.getUint32(8),
    payload: bytes.subarray(PCP_HEADER),
  };
}

/** Reads a PCP request (what a server gets; the lab's and tests' fake server uses it). */
export function decodePcpRequest(bytes: Uint8Array, bodyLength: number): PcpRequest {
  if (bytes.length < PCP_HEADER + bodyLength) throw new PortMapDecodeError(`PCP request: ${bytes.length} bytes, expected at least ${PCP_HEADER + bodyLength}`, bytes.length);
  if (bytes.length > PCP_MAX_MESSAGE || bytes.length % 4 !== 0) throw new PortMapDecodeError(`PCP request: ${bytes.length} bytes, expected a multiple of 4 up to ${PCP_MAX_MESSAGE}`, bytes.length);
  if (bytes[0] !== PCP_VERSION) throw new PortMapDecodeError(`PCP request: version ${bytes[0]}, expected ${PCP_VERSION}`, 0);
  if ((bytes[1]! & R_BIT) !== 0) throw new PortMapDecodeError('PCP request: R bit is 1 (a response), expected 0', 1);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    opcode: bytes[1]!,
    requestedLifetimeSeconds: view.getUint32(4),
    clientAddress: pcpAddressText(bytes.subarray(8, 24)),
    body: bytes.slice(PCP_HEADER, PCP_HEADER + bodyLength),
    options: decodeOptions(bytes.subarray(PCP_HEADER + bodyLength), PCP_HEADER + bodyLength),
  };
}

/**
 * The options after the opcode data: code, reserved, length, then data padded to 4 bytes.
 * @throws PortMapDecodeError when an option's length runs past the message
 * @see RFC 6887 §7.3
 */
export function decodeOptions(bytes: Uint8Array, baseOffset = 0): PcpOption[] {
  const options: PcpOption[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < 4) throw new PortMapDecodeError(`PCP option at byte ${baseOffset + at}: ${bytes.length - at} bytes left, an option header needs 4`, baseOffset + at);
    const code = bytes[at]!;
    const length = (bytes[at + 2]! << 8) | bytes[at + 3]!;
    const padded = (length + 3) & ~3;
    if (at + 4 + padded > bytes.length) {
      throw new PortMapDecodeError(`PCP option ${code} at byte ${baseOffset + at}: length ${length} (${padded} padded) runs past the message's ${bytes.length - at - 4} remaining bytes`, baseOffset + at);
    }
    options.push({ code, data: bytes.slice(at + 4, at + 4 + length) });
    at += 4 + padded;
  }
  return options;
}

export function encodeOptions(options: readonly PcpOption[]): Uint8Array {
  const total = options.reduce((sum, o) => sum + 4 + ((o.data.length + 3) & ~3), 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const option of options) {
    if (!Number.isInteger(option.code) || option.code < 0 || option.code > 0xff) throw new RangeError(`PCP option code ${option.code} is not 0-255`);
    if (option.data.length > 0xffff) throw new RangeError(`PCP option ${option.code}: ${option.data.length} bytes of data, at most 65535`);
    out[at] = option.code;
    out[at + 2] = option.data.length >> 8;
    out[at + 3] = option.data.length & 0xff;
    out.set(option.data, at + 4);
    at += 4 + ((option.data.length + 3) & ~3);
  }
  return out;
}

function checkOpcode(opcode: number): void {
  if (!Number.isInteger(opcode) || opcode < 0 || opcode > 0x7f) throw new RangeError(`PCP opcode ${opcode} is not 0-127`);
}
