/**
 * ChannelData: TURN's 4-byte-header framing for data on a bound channel (channel number, length,
 * application data). Over UDP the datagram may carry trailing padding; over TCP and TLS the
 * message is padded to a multiple of 4 (src/stun/framing.ts splits the stream).
 * @see RFC 8656 §12.4, §12.5
 */

import { MAX_CHANNEL, MAX_CHANNEL_RFC5766, MIN_CHANNEL } from '../wire/index.js';

export const CHANNEL_DATA_HEADER = 4;

/** True when the first two bits say ChannelData (0b01) rather than STUN (0b00). @see RFC 8656 §12 (RFC 7983 §7: 64-79) */
export function isChannelData(bytes: Uint8Array): boolean {
  return bytes.length >= CHANNEL_DATA_HEADER && (bytes[0]! & 0xc0) === 0x40;
}

export interface ChannelData {
  channel: number;
  /** A view into the input, not a copy: the relay's hot path forwards it without allocating. */
  data: Uint8Array;
}

/**
 * Reads a ChannelData message; `undefined` when it is not one a server or client may accept:
 * a channel outside 0x4000-0x7FFF (RFC 5766's range, see MAX_CHANNEL_RFC5766) or a length
 * longer than the bytes (RFC 8656 §12.4 says to discard those silently). Never throws.
 */
export function decodeChannelData(bytes: Uint8Array): ChannelData | undefined {
  const channel = acceptedChannel(bytes);
  if (channel < 0) return undefined;
  return { channel, data: bytes.subarray(CHANNEL_DATA_HEADER, CHANNEL_DATA_HEADER + channelDataLength(bytes)) };
}

/**
 * decodeChannelData without the result object, for the relay's hot path: the channel number of
 * a ChannelData message decodeChannelData accepts, else -1; the data is the next
 * `channelDataLength(bytes)` bytes after the header.
 */
export function acceptedChannel(bytes: Uint8Array, start = 0, end = bytes.length): number {
  if (end - start < CHANNEL_DATA_HEADER || (bytes[start]! & 0xc0) !== 0x40) return -1; // isChannelData
  const channel = (bytes[start]! << 8) | bytes[start + 1]!;
  if (channel < MIN_CHANNEL || channel > MAX_CHANNEL_RFC5766) return -1;
  return start + CHANNEL_DATA_HEADER + channelDataLength(bytes, start) > end ? -1 : channel;
}

/** The Length field of the ChannelData header at `start`. @see RFC 8656 §12.4 */
export function channelDataLength(bytes: Uint8Array, start = 0): number {
  return (bytes[start + 2]! << 8) | bytes[start + 3]!;
}

/**
 * Writes the header for `length` bytes of data on `channel` into `out` at `offset` (the caller
 * places the data after it): lets a sender build the message in one buffer.
 */
export function writeChannelDataHeader(out: Uint8Array, offset: number, channel: number, length: number): void {
  if (!Number.isInteger(channel) || channel < MIN_CHANNEL || channel > MAX_CHANNEL) throw new RangeError(`ChannelData: channel 0x${channel.toString(16)} is outside 0x4000-0x4fff`);
  if (!Number.isInteger(length) || length < 0 || length > 0xffff) throw new RangeError(`ChannelData: length ${length} is not 0-65535`);
  out[offset] = channel >> 8;
  out[offset + 1] = channel & 0xff;
  out[offset + 2] = length >> 8;
  out[offset + 3] = length & 0xff;
}

/** A complete ChannelData message, padded to 4 bytes when `stream` (TCP/TLS). @see RFC 8656 §12.5 */
export function encodeChannelData(channel: number, data: Uint8Array, stream = false): Uint8Array {
  const total = CHANNEL_DATA_HEADER + (stream ? (data.length + 3) & ~3 : data.length);
  const out = new Uint8Array(total);
  writeChannelDataHeader(out, 0, channel, data.length);
  out.set(data, CHANNEL_DATA_HEADER);
  return out;
}
