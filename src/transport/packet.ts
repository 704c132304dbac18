/**
 * Stream packet codec: pure functions from and to bytes, no state and no I/O (STYLE §1).
 *
 * Every packet starts with a 16-byte header; an ACK block follows when the range count is
 * non-zero, then the part that depends on the type. All integers are big-endian (network
 * order); packet numbers and stream offsets are 48-bit, enough for 256 TiB per direction.
 *
 * ```
 *  0               1               2               3
 * +---------------+---------------+---------------+---------------+
 * | marker 0x0E   | type          | flags         | ack ranges n  |
 * +---------------+---------------+---------------+---------------+
 * | packet number (48)                                            |
 * +                               +-------------------------------+
 * |                               | max stream data (48)          |
 * +-------------------------------+                               +
 * |                                                               |
 * +---------------------------------------------------------------+
 * if n > 0, the ACK block (RFC 9000 §19.3 shape, fixed-width fields):
 * | largest acknowledged (48) | ack delay µs (32) | first range length (32) |
 * | (gap (32) | range length (32)) × (n - 1)                                |
 * flags: FIN (0x01, DATA only), ACK-NOW (0x02, DATA only); other bits must be zero.
 * then by type:
 *   DATA:  | stream offset (48) | payload … to the end of the datagram |
 *   ACK:   nothing (n >= 1)
 *   PING:  nothing
 *   RESET: | reset code (16) | [reset token (128)] |
 * ```
 *
 * Design notes:
 * - Packet numbers are distinct from stream offsets and never reused, so a retransmission
 *   travels in a new packet. An ACK is then never ambiguous, which is what Karn's algorithm
 *   works around in TCP (@see RFC 6298 §3, RFC 9002 §5.1), and a lost retransmission is
 *   detected exactly like a lost original.
 * - The ACK block lists received packet-number ranges, highest first, like TCP SACK blocks
 *   (@see RFC 2018 §3) and QUIC ACK frames (@see RFC 9000 §19.3). Only DATA and PING packets
 *   are numbered for acknowledgement (they are "ack-eliciting"); ACK and RESET packets carry
 *   the sender's next packet number for information and are never acknowledged.
 * - "max stream data" is an absolute offset, the receive-window edge (@see RFC 9293 §3.8.6,
 *   RFC 9000 §4.1): absolute limits need no window scaling and reordered packets cannot shrink
 *   the window, because the receiver keeps the largest it has seen.
 * - A RESET may carry a 16-byte token, a secret both ends derived from their session: once a
 *   stream knows the token it honours only RESETs that carry it, so an attacker who sees or
 *   guesses the 5-tuple and connection id cannot end the stream (the idea of QUIC's stateless
 *   reset token, @see RFC 9000 §10.3).
 * - The marker byte 0x0E lies in a range RFC 7983 §7 leaves to no protocol, so a plaintext stream
 *   packet on the shared socket is never mistaken for STUN (0-3), DTLS (20-63), TURN ChannelData
 *   (64-79) or RTP (128-191).
 */
import { StreamDecodeError, TransportError } from './errors.js';

export const STREAM_PACKET_MARKER = 0x0e;

export const PacketType = {
  Data: 0x01,
  Ack: 0x02,
  Ping: 0x03,
  Reset: 0x04,
} as const;
export type PacketType = (typeof PacketType)[keyof typeof PacketType];

/**
 * The code a RESET carries: why the stream was aborted. Unknown codes are honoured as `Error`.
 * - `Error`: the sender failed (an exception, a path that died, a timeout);
 * - `Aborted`: the application aborted on purpose (connection.abort(): a user's Ctrl-C), so
 *   the receiver reports ERR_PEER_ABORTED rather than a transport failure.
 */
export const ResetCode = {
  Error: 0,
  Aborted: 1,
} as const;
export type ResetCode = (typeof ResetCode)[keyof typeof ResetCode];

/** Wire names, for messages and logs. */
export const packetTypeNames: Readonly<Record<PacketType, string>> = {
  [PacketType.Data]: 'DATA',
  [PacketType.Ack]: 'ACK',
  [PacketType.Ping]: 'PING',
  [PacketType.Reset]: 'RESET',
};

export const PacketFlag = {
  /** The payload ends the stream; like TCP's FIN it occupies one position after the last byte. */
  Fin: 0x01,
  /**
   * The sender will send nothing more until it hears back (its window is full or it has no more
   * data), so delaying the ACK would only stall it: acknowledge at once. The same idea as QUIC's
   * IMMEDIATE_ACK frame (@see draft-ietf-quic-ack-frequency §6).
   */
  AckNow: 0x02,
} as const;

export const HEADER_LENGTH = 16;
export const RESET_TOKEN_LENGTH = 16;
export const DATA_OFFSET_LENGTH = 6;
const ACK_BLOCK_FIXED_LENGTH = 14;
const ACK_RANGE_LENGTH = 8;
/** The range count is one byte. */
export const MAX_ACK_RANGES = 255;
/** Largest 48-bit value, the limit of packet numbers and stream offsets. */
export const MAX_UINT48 = 2 ** 48 - 1;
const MAX_UINT32 = 2 ** 32 - 1;

/** A half-open range of packet numbers [start, end). */
export interface PacketRange {
  start: number;
  end: number;
}

export interface AckBlock {
  /** Received packet-number ranges, highest first, disjoint and not touching. */
  ranges: PacketRange[];
  /** Microseconds the receiver held the ACK after the largest packet arrived (@see RFC 9002 §5.3). */
  ackDelay: number;
}

interface PacketBase {
  packetNumber: number;
  /** The sender's receive-window edge: it accepts stream bytes below this offset. */
  maxStreamData: number;
  ack: AckBlock | undefined;
}

export interface DataPacket extends PacketBase {
  type: typeof PacketType.Data;
  offset: number;
  payload: Uint8Array;
  fin: boolean;
  ackNow: boolean;
}

export interface AckPacket extends PacketBase {
  type: typeof PacketType.Ack;
}

export interface PingPacket extends PacketBase {
  type: typeof PacketType.Ping;
}

export interface ResetPacket extends PacketBase {
  type: typeof PacketType.Reset;
  resetCode: number;
  /** RESET_TOKEN_LENGTH bytes proving the sender holds the session's secret, when the stream has one. */
  resetToken?: Uint8Array;
}

export type StreamPacket = DataPacket | AckPacket | PingPacket | ResetPacket;

/** Bytes an ACK block with `rangeCount` ranges takes (0 for none). */
export function ackBlockLength(rangeCount: number): number {
  return rangeCount === 0 ? 0 : ACK_BLOCK_FIXED_LENGTH + ACK_RANGE_LENGTH * (rangeCount - 1);
}

/** Cheap test for demultiplexing a shared socket: does this datagram claim to be a stream packet? */
export function isStreamPacket(datagram: Uint8Array): boolean {
  return datagram.length >= HEADER_LENGTH && datagram[0] === STREAM_PACKET_MARKER;
}

export function encodePacket(packet: StreamPacket): Buffer {
  const payload = packet.type === PacketType.Data ? [packet.payload] : [];
  return encodePacketWithPayload(packet, payload);
}

/**
 * Encodes `packet`, taking a DATA packet's payload from `payload` (pieces written back to back,
 * so the send buffer's chunks are copied once, straight into the datagram). With `headroom`,
 * the packet starts that many bytes into the returned buffer, leaving room for a path's own
 * header (DatagramPath.headroom), so the path need not copy the datagram again.
 */
export function encodePacketWithPayload(packet: StreamPacket, payload: readonly Uint8Array[], headroom = 0): Buffer {
  const ranges = packet.ack?.ranges ?? [];
  if (ranges.length > MAX_ACK_RANGES) {
    throw new TransportError(`packet: ${ranges.length} ACK ranges, expected at most ${MAX_ACK_RANGES}`);
  }
  let payloadLength = 0;
  for (const piece of payload) payloadLength += piece.length;
  let length = HEADER_LENGTH + ackBlockLength(ranges.length);
  if (packet.type === PacketType.Data) length += DATA_OFFSET_LENGTH + payloadLength;
  else if (packet.type === PacketType.Reset) {
    length += 2;
    if (packet.resetToken !== undefined) {
      if (packet.resetToken.length !== RESET_TOKEN_LENGTH) {
        throw new TransportError(`packet/RESET: token length ${packet.resetToken.length}, expected ${RESET_TOKEN_LENGTH}`);
      }
      length += RESET_TOKEN_LENGTH;
    }
  }

  const buf = Buffer.allocUnsafe(headroom + length);
  // Fields are written at `headroom + ...` rather than through a view: one object fewer per packet.
  const h = headroom;
  buf[h] = STREAM_PACKET_MARKER;
  buf[h + 1] = packet.type;
  buf[h + 2] =
    packet.type === PacketType.Data ? (packet.fin ? PacketFlag.Fin : 0) | (packet.ackNow ? PacketFlag.AckNow : 0) : 0;
  buf[h + 3] = ranges.length;
  buf.writeUIntBE(checkUint48(packet.packetNumber, 'packet number'), h + 4, 6);
  buf.writeUIntBE(checkUint48(packet.maxStreamData, 'max stream data'), h + 10, 6);
  let at = h + HEADER_LENGTH;
  if (ranges.length > 0) at = writeAckBlock(buf, at, packet.ack!);
  switch (packet.type) {
    case PacketType.Data:
      checkUint48(packet.offset + payloadLength, 'stream offset + payload length');
      buf.writeUIntBE(packet.offset, at, 6);
      at += DATA_OFFSET_LENGTH;
      for (const piece of payload) {
        buf.set(piece, at);
        at += piece.length;
      }
      break;
    case PacketType.Reset:
      buf.writeUInt16BE(packet.resetCode & 0xffff, at);
      if (packet.resetToken !== undefined) buf.set(packet.resetToken, at + 2);
      break;
    case PacketType.Ack:
    case PacketType.Ping:
      break;
  }
  return buf;
}

function writeAckBlock(buf: Buffer, at: number, ack: AckBlock): number {
  const first = ack.ranges[0]!;
  buf.writeUIntBE(checkUint48(first.end - 1, 'largest acknowledged'), at, 6);
  buf.writeUInt32BE(Math.min(MAX_UINT32, Math.max(0, Math.round(ack.ackDelay))), at + 6);
  buf.writeUInt32BE(checkUint32(first.end - 1 - first.start, 'first ACK range length'), at + 10);
  at += ACK_BLOCK_FIXED_LENGTH;
  let previousStart = first.start;
  for (let i = 1; i < ack.ranges.length; i++) {
    const range = ack.ranges[i]!;
    // gap = packets missing between the two ranges; at least one, or they would be one range.
    buf.writeUInt32BE(checkUint32(previousStart - range.end, 'ACK gap'), at);
    buf.writeUInt32BE(checkUint32(range.end - 1 - range.start, 'ACK range length'), at + 4);
    at += ACK_RANGE_LENGTH;
    previousStart = range.start;
  }
  return at;
}

function checkUint48(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > MAX_UINT48) {
    throw new TransportError(`packet: ${what} ${value}, expected an integer in 0..2^48-1`);
  }
  return value;
}

function checkUint32(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > MAX_UINT32) {
    throw new TransportError(`packet: ${what} ${value}, expected an integer in 0..2^32-1`);
  }
  return value;
}

/** Decodes one datagram. Throws StreamDecodeError, and nothing else, on any malformed input. */
export function decodePacket(datagram: Uint8Array): StreamPacket {
  const buf = Buffer.isBuffer(datagram)
    ? datagram
    : Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  if (buf.length < HEADER_LENGTH) {
    throw new StreamDecodeError(`packet: length ${buf.length}, expected at least ${HEADER_LENGTH}`, 0);
  }
  if (buf[0] !== STREAM_PACKET_MARKER) {
    throw new StreamDecodeError(`packet: marker 0x${hex(buf[0]!)}, expected 0x${hex(STREAM_PACKET_MARKER)}`, 0);
  }
  const type = buf[1]!;
  if (!(type in packetTypeNames)) {
    throw new StreamDecodeError(`packet: type 0x${hex(type)}, expected DATA, ACK, PING or RESET (1-4)`, 1);
  }
  const flags = buf[2]!;
  const allowedFlags = type === PacketType.Data ? PacketFlag.Fin | PacketFlag.AckNow : 0;
  if ((flags & ~allowedFlags) !== 0) {
    const name = packetTypeNames[type as PacketType];
    throw new StreamDecodeError(`packet/${name}: flags 0x${hex(flags)}, expected only 0x${hex(allowedFlags)}`, 2);
  }
  const rangeCount = buf[3]!;
  const packetNumber = buf.readUIntBE(4, 6);
  const maxStreamData = buf.readUIntBE(10, 6);
  let at = HEADER_LENGTH;
  let ack: AckBlock | undefined;
  if (rangeCount > 0) {
    ack = readAckBlock(buf, at, rangeCount);
    at += ackBlockLength(rangeCount);
  }
  const base = { packetNumber, maxStreamData, ack };
  switch (type) {
    case PacketType.Data: {
      if (buf.length < at + DATA_OFFSET_LENGTH) {
        throw new StreamDecodeError(`packet/DATA: length ${buf.length}, expected at least ${at + DATA_OFFSET_LENGTH}`, at);
      }
      const offset = buf.readUIntBE(at, 6);
      const payload = buf.subarray(at + DATA_OFFSET_LENGTH);
      const fin = (flags & PacketFlag.Fin) !== 0;
      if (payload.length === 0 && !fin) {
        throw new StreamDecodeError('packet/DATA: empty payload without FIN, expected data or FIN', at);
      }
      if (offset + payload.length > MAX_UINT48) {
        throw new StreamDecodeError(`packet/DATA: offset ${offset} + length ${payload.length} passes 2^48-1`, at);
      }
      const ackNow = (flags & PacketFlag.AckNow) !== 0;
      return { type: PacketType.Data, ...base, offset, payload, fin, ackNow };
    }
    case PacketType.Ack:
      if (ack === undefined) throw new StreamDecodeError('packet/ACK: 0 ACK ranges, expected at least 1', 3);
      expectEnd(buf, at, 'ACK');
      return { type: PacketType.Ack, ...base };
    case PacketType.Ping:
      expectEnd(buf, at, 'PING');
      return { type: PacketType.Ping, ...base };
    default: {
      if (buf.length !== at + 2 && buf.length !== at + 2 + RESET_TOKEN_LENGTH) {
        throw new StreamDecodeError(`packet/RESET: length ${buf.length}, expected ${at + 2} or ${at + 2 + RESET_TOKEN_LENGTH} (with a token)`, at);
      }
      const resetCode = buf.readUInt16BE(at);
      if (buf.length === at + 2) return { type: PacketType.Reset, ...base, resetCode };
      return { type: PacketType.Reset, ...base, resetCode, resetToken: buf.subarray(at + 2) };
    }
  }
}

function readAckBlock(buf: Buffer, at: number, rangeCount: number): AckBlock {
  const needed = at + ackBlockLength(rangeCount);
  if (buf.length < needed) {
    throw new StreamDecodeError(`packet/ACK block: ${rangeCount} ranges need ${needed} bytes, got ${buf.length}`, at);
  }
  const largest = buf.readUIntBE(at, 6);
  const ackDelay = buf.readUInt32BE(at + 6);
  const firstLength = buf.readUInt32BE(at + 10);
  if (firstLength > largest) {
    throw new StreamDecodeError(`packet/ACK block: first range length ${firstLength} exceeds largest ${largest}`, at + 10);
  }
  const ranges: PacketRange[] = [{ start: largest - firstLength, end: largest + 1 }];
  let previousStart = largest - firstLength;
  at += ACK_BLOCK_FIXED_LENGTH;
  for (let i = 1; i < rangeCount; i++, at += ACK_RANGE_LENGTH) {
    const gap = buf.readUInt32BE(at);
    const length = buf.readUInt32BE(at + 4);
    if (gap === 0) throw new StreamDecodeError(`packet/ACK block: range ${i} gap 0, expected at least 1`, at);
    const end = previousStart - gap;
    if (end - 1 - length < 0) {
      throw new StreamDecodeError(`packet/ACK block: range ${i} (gap ${gap}, length ${length}) goes below packet 0`, at);
    }
    ranges.push({ start: end - 1 - length, end });
    previousStart = end - 1 - length;
  }
  return { ranges, ackDelay };
}

function expectEnd(buf: Buffer, at: number, name: string): void {
  if (buf.length !== at) {
    throw new StreamDecodeError(`packet/${name}: length ${buf.length}, expected ${at}`, at);
  }
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}
