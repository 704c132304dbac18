/**
 * The 20-byte STUN message header and the message type's interleaved method/class bits.
 *
 *    0                   1                   2                   3
 *   |0 0|     STUN Message Type     |         Message Length        |
 *   |                         Magic Cookie                          |
 *   |                     Transaction ID (96 bits)                  |
 *
 * Message type bits: M11..M7 C1 M6..M4 C0 M3..M0.
 * @see RFC 8489 §5
 */

import { ATTRIBUTE_HEADER_LENGTH, HEADER_LENGTH, type MessageClass } from './constants.js';
import type { Attribute } from './message.js';

/** Message type field for a method (12 bits) and class (2 bits). @see RFC 8489 §5, Figure 3 */
export function messageType(method: number, messageClass: MessageClass): number {
  return (
    (method & 0x000f) |
    ((method & 0x0070) << 1) |
    ((method & 0x0f80) << 2) |
    ((messageClass & 0b01) << 4) |
    ((messageClass & 0b10) << 7)
  );
}

/** Method and class packed in a message type field. */
export function splitMessageType(type: number): { method: number; messageClass: MessageClass } {
  const method = (type & 0x000f) | ((type >> 1) & 0x0070) | ((type >> 2) & 0x0f80);
  const messageClass = (((type >> 4) & 0b01) | ((type >> 7) & 0b10)) as MessageClass;
  return { method, messageClass };
}

export function readUint16(buf: Uint8Array, offset: number): number {
  return (buf[offset]! << 8) | buf[offset + 1]!;
}

export function readUint32(buf: Uint8Array, offset: number): number {
  return ((buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!) >>> 0;
}

export function writeUint16(buf: Uint8Array, offset: number, value: number): void {
  buf[offset] = (value >>> 8) & 0xff;
  buf[offset + 1] = value & 0xff;
}

export function writeUint32(buf: Uint8Array, offset: number, value: number): void {
  buf[offset] = (value >>> 24) & 0xff;
  buf[offset + 1] = (value >>> 16) & 0xff;
  buf[offset + 2] = (value >>> 8) & 0xff;
  buf[offset + 3] = value & 0xff;
}

/** Value length rounded up to the 4-byte boundary every attribute is padded to. @see RFC 8489 §14 */
export function padded(length: number): number {
  return (length + 3) & ~3;
}

/**
 * A copy of the header of `raw` whose length field says the message ends at `end`: what
 * MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are computed over, together with
 * `raw[20..attributeOffset)`. @see RFC 8489 §14.5, §14.6, §14.7
 */
export function headerEndingAt(raw: Uint8Array, end: number): Uint8Array {
  const header = raw.slice(0, HEADER_LENGTH);
  writeUint16(header, 2, end - HEADER_LENGTH);
  return header;
}

/** Offset of each attribute's header in the message these attributes were decoded from, in order. */
export function attributeOffsets(attributes: readonly Attribute[]): number[] {
  const offsets: number[] = [];
  let offset = HEADER_LENGTH;
  for (const attribute of attributes) {
    offsets.push(offset);
    offset += ATTRIBUTE_HEADER_LENGTH + padded(attribute.value.length);
  }
  return offsets;
}
