/**
 * What travels on a path: the bytes a raw path (a punched UDP 5-tuple, a TCP connection, later
 * a TURN channel) carries for one natpunch connection, after the path's own header (UDP: type
 * byte and connection id; TCP: the frame length).
 *
 * ```
 * HANDSHAKE  | 0x01 | message index (1) | Noise XX handshake message            |
 * SEALED     | 0x02 | counter (8, LE) | ChaChaPoly(inner) | tag (16)            |
 * inner      | type (1) | body                                                  |
 *   0x0E…      a stream packet (src/transport/packet.ts: its marker byte is the type)
 *   0x10       PATH_CHALLENGE | 8 random bytes
 *   0x11       PATH_RESPONSE  | the 8 bytes of the challenge it answers
 *   0x12       PUNCH          | JSON: re-punch coordination (see path-manager.ts)
 * ```
 *
 * Every byte after the handshake is sealed: one AEAD per datagram, its counter the nonce and
 * the frame kind authenticated as associated data (src/secure/datagram-cipher.ts). So a stream
 * packet, an ACK and a path probe all prove they come from the peer, whatever address they
 * arrive from: that is what lets a connection follow a NAT rebinding safely, and what stops a
 * forged ACK or DATA from stalling the stream (@see RFC 9000 §9.3 and §17.2, where QUIC draws
 * the same conclusion for connection migration).
 */
import { DATAGRAM_OVERHEAD } from '../secure/index.js';
import { STREAM_PACKET_MARKER } from '../transport/packet.js';

export const FrameKind = {
  Handshake: 0x01,
  Sealed: 0x02,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export const InnerType = {
  Stream: STREAM_PACKET_MARKER,
  PathChallenge: 0x10,
  PathResponse: 0x11,
  Punch: 0x12,
} as const;

/** HANDSHAKE header: kind and message index. */
export const HANDSHAKE_HEADER_LENGTH = 2;
/** SEALED header: the kind byte (the counter is part of DATAGRAM_OVERHEAD). */
export const SEALED_HEADER_LENGTH = 1;
/** Bytes a SEALED frame adds to its inner plaintext. */
export const SEALED_OVERHEAD = SEALED_HEADER_LENGTH + DATAGRAM_OVERHEAD;
/** PATH_CHALLENGE / PATH_RESPONSE data (@see RFC 9000 §19.17). */
export const CHALLENGE_LENGTH = 8;

/** The associated data of every SEALED frame: its kind byte, so a frame cannot change kind. */
export const SEALED_AD = Uint8Array.of(FrameKind.Sealed);

export function encodeHandshakeFrame(index: number, message: Uint8Array): Uint8Array {
  const frame = new Uint8Array(HANDSHAKE_HEADER_LENGTH + message.length);
  frame[0] = FrameKind.Handshake;
  frame[1] = index;
  frame.set(message, HANDSHAKE_HEADER_LENGTH);
  return frame;
}

/** A PATH_CHALLENGE or PATH_RESPONSE body, as inner plaintext. */
export function encodeProbe(type: typeof InnerType.PathChallenge | typeof InnerType.PathResponse, data: Uint8Array): Uint8Array {
  const inner = new Uint8Array(1 + CHALLENGE_LENGTH);
  inner[0] = type;
  inner.set(data.subarray(0, CHALLENGE_LENGTH), 1);
  return inner;
}
