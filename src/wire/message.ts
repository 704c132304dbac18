/**
 * STUN messages: decoding with precise errors, encoding with padding and the trailing
 * MESSAGE-INTEGRITY / MESSAGE-INTEGRITY-SHA256 / FINGERPRINT attributes.
 *
 * A decoded message keeps its exact bytes (`raw`), because integrity and fingerprint are
 * checked over the bytes as received, and its attributes in wire order as views into `raw`.
 * @see RFC 8489 §5, §6, §14
 */

import { randomFillSync } from 'node:crypto';
import {
  ATTRIBUTE_HEADER_LENGTH,
  AttrType,
  HEADER_LENGTH,
  MAGIC_COOKIE,
  MAX_MESSAGE_BODY_LENGTH,
  MessageClass,
  TRANSACTION_ID_LENGTH,
  attrName,
} from './constants.js';
import { computeFingerprint } from './fingerprint.js';
import { messageType, padded, readUint16, readUint32, splitMessageType, writeUint16, writeUint32 } from './header.js';
import { computeIntegrity, MESSAGE_INTEGRITY_LENGTH, MESSAGE_INTEGRITY_SHA256_LENGTH } from './message-integrity.js';
import { StunDecodeError, StunEncodeError } from '../errors.js';

export { verifyFingerprint, inspectFingerprint } from './fingerprint.js';
export { verifyIntegrity, inspectIntegrity } from './message-integrity.js';
export { shortTermKey, longTermKey } from './credentials.js';

/** One attribute: its type and its value without padding. @see RFC 8489 §14 */
export interface Attribute {
  type: number;
  value: Uint8Array;
}

/** A decoded STUN message. */
export interface StunMessage {
  method: number;
  messageClass: MessageClass;
  /** 12 bytes. */
  transactionId: Uint8Array;
  /** In wire order, duplicates included (readers take the first: `getAttribute`). */
  attributes: Attribute[];
  /** The exact bytes decoded (a private copy), needed for integrity and fingerprint checks. */
  raw: Uint8Array;
  /**
   * Set when the message came from an RFC 3489 ("classic") client: no magic cookie, so bytes 4-8
   * are the first part of its 128-bit transaction id (only with `DecodeOptions.rfc3489`).
   */
  rfc3489?: { cookie: number };
}

/** Fields `encodeMessage` builds a message from. */
export interface MessageFields {
  method: number;
  messageClass: MessageClass;
  transactionId: Uint8Array;
  attributes: Attribute[];
  /** Bytes 4-8 for a reply to an RFC 3489 client (its transaction id's first part); default the magic cookie. */
  cookie?: number;
}

export interface DecodeOptions {
  /** Refuse messages with more attributes than this (default 64): bounds work per packet. */
  maxAttributes?: number;
  /**
   * Accept a message without the magic cookie as an RFC 3489 message (marked `rfc3489`), for a
   * server answering classic clients (RFC 8489 §11). Default false: such a message is an error.
   */
  rfc3489?: boolean;
}

export interface EncodeOptions {
  /**
   * Append MESSAGE-INTEGRITY (`'sha1'`, the default), MESSAGE-INTEGRITY-SHA256 (`'sha256'`), or
   * both (`'both'`: MESSAGE-INTEGRITY first, then MESSAGE-INTEGRITY-SHA256, the only order in
   * which neither is ignored, RFC 8489 §14.5-14.6) computed with `key`.
   */
  integrity?: {
    /** The HMAC key (short-term: the password; long-term: MD5(username:realm:password)). */
    key: Uint8Array;
    /** Which attribute(s): MESSAGE-INTEGRITY ('sha1', default), -SHA256, or 'both'. */
    algorithm?: 'sha1' | 'sha256' | 'both';
  };
  /** Append FINGERPRINT, last. @see RFC 8489 §14.7 */
  fingerprint?: boolean;
}

export const DEFAULT_MAX_ATTRIBUTES = 64;

/**
 * Cheap check that a datagram is a STUN message, for demultiplexing one socket among STUN,
 * DTLS, RTP and application data: first byte 0-3 (RFC 7983 §7), magic cookie, and a length that
 * is a multiple of 4 and matches the buffer. Never throws.
 *
 * The 0-3 range is RFC 7983's and holds for methods 0x000-0x0FF, i.e. every method assigned
 * today; `decodeMessage` itself only requires the top two bits to be zero (RFC 8489 §5).
 * @see RFC 8489 §5, §7; RFC 7983
 */
export function isStunMessage(buf: Uint8Array): boolean {
  if (!(buf instanceof Uint8Array) || buf.length < HEADER_LENGTH) return false;
  if (buf[0]! > 3) return false;
  if (readUint32(buf, 4) !== MAGIC_COOKIE) return false;
  const length = readUint16(buf, 2);
  return length % 4 === 0 && length === buf.length - HEADER_LENGTH;
}

/**
 * Total size of the STUN message starting at `buf[0]` according to its header, or `undefined`
 * when fewer than 20 bytes are there or the header is not a STUN header. For framing STUN over
 * a stream (TCP), where messages follow each other. @see RFC 8489 §6.2.2
 */
export function readMessageLength(buf: Uint8Array): number | undefined {
  if (!(buf instanceof Uint8Array) || buf.length < HEADER_LENGTH) return undefined;
  if ((buf[0]! & 0xc0) !== 0 || readUint32(buf, 4) !== MAGIC_COOKIE) return undefined;
  const length = readUint16(buf, 2);
  return length % 4 === 0 ? HEADER_LENGTH + length : undefined;
}

/**
 * Decodes one STUN message that fills `buf` exactly. Attribute values are not interpreted here;
 * use the typed codecs (`xorMappedAddress.decode(...)`) on what `getAttribute` returns.
 * @throws StunDecodeError (and nothing else) with the offset and what was wrong
 */
export function decodeMessage(buf: Uint8Array, options?: DecodeOptions): StunMessage {
  if (!(buf instanceof Uint8Array)) throw new StunDecodeError('message: expected a Uint8Array', 0);
  const maxAttributes = options?.maxAttributes ?? DEFAULT_MAX_ATTRIBUTES;
  if (buf.length < HEADER_LENGTH) {
    throw new StunDecodeError(`message: ${buf.length} bytes, shorter than the 20-byte header`, 0);
  }
  if ((buf[0]! & 0xc0) !== 0) {
    throw new StunDecodeError(`message: first two bits must be 0, got first byte 0x${buf[0]!.toString(16).padStart(2, '0')}`, 0);
  }
  const cookie = readUint32(buf, 4);
  if (cookie !== MAGIC_COOKIE && !options?.rfc3489) {
    throw new StunDecodeError(`message: magic cookie 0x${cookie.toString(16).padStart(8, '0')}, expected 0x2112a442 (RFC 3489 messages are not supported)`, 4);
  }
  const length = readUint16(buf, 2);
  if (length % 4 !== 0) throw new StunDecodeError(`message: length field ${length} is not a multiple of 4`, 2);
  if (length !== buf.length - HEADER_LENGTH) {
    throw new StunDecodeError(`message: length field ${length}, but ${buf.length - HEADER_LENGTH} bytes follow the header`, 2);
  }

  const raw = new Uint8Array(buf.length);
  raw.set(buf);
  const attributes: Attribute[] = [];
  let offset = HEADER_LENGTH;
  while (offset < raw.length) {
    if (attributes.length >= maxAttributes) {
      throw new StunDecodeError(`message: more than ${maxAttributes} attributes`, offset);
    }
    // A whole attribute header always fits: the body length and every padded attribute are
    // multiples of 4, so at least 4 bytes remain whenever offset < raw.length.
    const type = readUint16(raw, offset);
    const valueLength = readUint16(raw, offset + 2);
    const start = offset + ATTRIBUTE_HEADER_LENGTH;
    if (start + padded(valueLength) > raw.length) {
      throw new StunDecodeError(
        `attribute ${attrName(type)} at offset ${offset}: value length ${valueLength} (${padded(valueLength)} padded), but ${raw.length - start} bytes left`,
        offset,
      );
    }
    attributes.push({ type, value: raw.subarray(start, start + valueLength) });
    offset = start + padded(valueLength);
  }
  const { method, messageClass } = splitMessageType(readUint16(raw, 0));
  const message: StunMessage = { method, messageClass, transactionId: raw.subarray(8, HEADER_LENGTH), attributes, raw };
  if (cookie !== MAGIC_COOKIE) message.rfc3489 = { cookie };
  return message;
}

/**
 * Whether a datagram looks like an RFC 3489 Binding request: type 0x0001, no magic cookie, a
 * body length that is a multiple of 4 and fills the datagram. Never throws.
 * @see RFC 3489 §11.1, RFC 8489 §11 (backwards compatibility)
 */
export function isRfc3489BindingRequest(buf: Uint8Array): boolean {
  if (!(buf instanceof Uint8Array) || buf.length < HEADER_LENGTH) return false;
  if (readUint16(buf, 0) !== 0x0001 || readUint32(buf, 4) === MAGIC_COOKIE) return false;
  const length = readUint16(buf, 2);
  return length % 4 === 0 && length === buf.length - HEADER_LENGTH;
}

/** The value of the first attribute of `type`; later duplicates are ignored. @see RFC 8489 §14 */
export function getAttribute(msg: StunMessage, type: number): Uint8Array | undefined {
  for (const attribute of msg.attributes) if (attribute.type === type) return attribute.value;
  return undefined;
}

/** 12 random bytes from the system CSPRNG. @see RFC 8489 §5 */
export function newTransactionId(): Uint8Array {
  return randomFillSync(new Uint8Array(TRANSACTION_ID_LENGTH));
}

function checkFields(msg: MessageFields): void {
  if (!Number.isInteger(msg.method) || msg.method < 0 || msg.method > 0xfff) {
    throw new StunEncodeError(`message: method ${msg.method} is not a 12-bit number`);
  }
  if (!Number.isInteger(msg.messageClass) || msg.messageClass < 0 || msg.messageClass > 3) {
    throw new StunEncodeError(`message: class ${msg.messageClass} is not 0-3`);
  }
  if (msg.cookie !== undefined && (!Number.isInteger(msg.cookie) || msg.cookie < 0 || msg.cookie > 0xffffffff)) {
    throw new StunEncodeError(`message: cookie ${msg.cookie} is not a 32-bit number`);
  }
  if (!(msg.transactionId instanceof Uint8Array) || msg.transactionId.length !== TRANSACTION_ID_LENGTH) {
    throw new StunEncodeError(`message: transaction id must be 12 bytes, got ${msg.transactionId?.length}`);
  }
  for (const [i, a] of msg.attributes.entries()) {
    if (!Number.isInteger(a.type) || a.type < 0 || a.type > 0xffff) {
      throw new StunEncodeError(`attribute #${i}: type ${a.type} is not a 16-bit number`);
    }
    if (!(a.value instanceof Uint8Array)) throw new StunEncodeError(`attribute ${attrName(a.type)}: value must be a Uint8Array`);
    if (a.value.length > MAX_MESSAGE_BODY_LENGTH) {
      throw new StunEncodeError(`attribute ${attrName(a.type)}: value length ${a.value.length}, at most 65535`);
    }
  }
}

/**
 * Encodes a message: header, attributes padded with zeros to 4 bytes, then (per `options`)
 * MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, each computed with the length
 * adjustment of RFC 8489 §14.5-14.7.
 * @throws StunEncodeError on fields that cannot be encoded, or a message over 65555 bytes
 */
export function encodeMessage(msg: MessageFields, options?: EncodeOptions): Uint8Array {
  checkFields(msg);
  const integrity = options?.integrity;
  const algorithm = integrity ? (integrity.algorithm ?? 'sha1') : undefined;
  if (algorithm !== undefined && algorithm !== 'sha1' && algorithm !== 'sha256' && algorithm !== 'both') {
    throw new StunEncodeError(`message: integrity algorithm "${String(algorithm)}", expected "sha1", "sha256" or "both"`);
  }
  if (integrity && !(integrity.key instanceof Uint8Array)) throw new StunEncodeError('message: integrity key must be a Uint8Array');
  const withSha1 = algorithm === 'sha1' || algorithm === 'both';
  const withSha256 = algorithm === 'sha256' || algorithm === 'both';
  const trailing: number[] = [];
  if (withSha1) trailing.push(AttrType.MessageIntegrity);
  if (withSha256) trailing.push(AttrType.MessageIntegritySha256);
  if (options?.fingerprint) trailing.push(AttrType.Fingerprint);
  for (const a of msg.attributes) {
    if (trailing.includes(a.type)) {
      throw new StunEncodeError(`attribute ${attrName(a.type)}: given in the list and requested in options; give it once`);
    }
  }

  let length = 0;
  for (const a of msg.attributes) length += ATTRIBUTE_HEADER_LENGTH + padded(a.value.length);
  if (withSha1) length += ATTRIBUTE_HEADER_LENGTH + MESSAGE_INTEGRITY_LENGTH;
  if (withSha256) length += ATTRIBUTE_HEADER_LENGTH + MESSAGE_INTEGRITY_SHA256_LENGTH;
  if (options?.fingerprint) length += ATTRIBUTE_HEADER_LENGTH + 4;
  if (length > MAX_MESSAGE_BODY_LENGTH) {
    throw new StunEncodeError(`message: body of ${length} bytes does not fit the 16-bit length field (at most 65535)`);
  }

  const out = new Uint8Array(HEADER_LENGTH + length);
  writeUint16(out, 0, messageType(msg.method, msg.messageClass));
  writeUint16(out, 2, length);
  writeUint32(out, 4, msg.cookie ?? MAGIC_COOKIE);
  out.set(msg.transactionId, 8);
  let offset = HEADER_LENGTH;
  for (const a of msg.attributes) {
    writeUint16(out, offset, a.type);
    writeUint16(out, offset + 2, a.value.length);
    out.set(a.value, offset + ATTRIBUTE_HEADER_LENGTH);
    offset += ATTRIBUTE_HEADER_LENGTH + padded(a.value.length); // padding stays zero
  }
  if (integrity && withSha1) offset = appendIntegrity(out, offset, 'sha1', integrity.key);
  if (integrity && withSha256) offset = appendIntegrity(out, offset, 'sha256', integrity.key);
  if (options?.fingerprint) {
    writeUint16(out, offset, AttrType.Fingerprint);
    writeUint16(out, offset + 2, 4);
    writeUint32(out, offset + 4, computeFingerprint(out, offset));
  }
  return out;
}

function appendIntegrity(out: Uint8Array, offset: number, algorithm: 'sha1' | 'sha256', key: Uint8Array): number {
  const length = algorithm === 'sha1' ? MESSAGE_INTEGRITY_LENGTH : MESSAGE_INTEGRITY_SHA256_LENGTH;
  writeUint16(out, offset, algorithm === 'sha1' ? AttrType.MessageIntegrity : AttrType.MessageIntegritySha256);
  writeUint16(out, offset + 2, length);
  out.set(computeIntegrity(out, offset, algorithm, key, length), offset + ATTRIBUTE_HEADER_LENGTH);
  return offset + ATTRIBUTE_HEADER_LENGTH + length;
}
