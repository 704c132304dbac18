/**
 * The TCP header fields the sim carries: the control bits and sequence numbers that decide a
 * connection's state (RFC 9293 §3.1), nothing about windows, options or checksums.
 *
 * @see RFC 9293 §3.1 (header format), §3.4 (sequence numbers), §3.5 (establishing a connection)
 */

/** The control bits the sim uses (RFC 9293 §3.1: SYN, ACK, FIN, RST). */
export interface TcpFlags {
  syn?: boolean;
  ack?: boolean;
  fin?: boolean;
  rst?: boolean;
}

export interface TcpHeader extends TcpFlags {
  /** Sequence number of the first octet (of the SYN or FIN when those are set). */
  seq: number;
  /** Next sequence number the sender expects; meaningful when `ack` is set. */
  ackNumber: number;
}

/** Linux's default IP TTL (net.ipv4.ip_default_ttl): every TCP segment a sim host or router sends starts with it. */
export const DEFAULT_TTL = 64;

/** Sequence space is modulo 2^32 (RFC 9293 §3.4). */
export function seqAdd(seq: number, n: number): number {
  return (seq + n) >>> 0;
}

/** Sequence space a segment occupies: its data, plus one each for SYN and FIN (RFC 9293 §3.4). */
export function segmentLength(header: TcpHeader, payloadLength: number): number {
  return payloadLength + (header.syn ? 1 : 0) + (header.fin ? 1 : 0);
}

/** "S", "S.", "R.", "F.", "." as tcpdump prints the flags, for traces and errors. */
export function flagsText(header: TcpFlags): string {
  const text = `${header.syn ? 'S' : ''}${header.fin ? 'F' : ''}${header.rst ? 'R' : ''}${header.ack ? '.' : ''}`;
  return text === '' ? 'none' : text;
}

/**
 * The reset a TCP answers a segment with when no connection wants it (RFC 9293 §3.10.7.1, the
 * CLOSED state; also what a router's `reject with tcp reset` sends): with the segment's ACK as
 * its sequence number, or else sequence 0 and an ACK of everything the segment occupied.
 * Undefined for a RST, which is never answered.
 */
export function resetFor(header: TcpHeader, payloadLength: number): TcpHeader | undefined {
  if (header.rst) return undefined;
  if (header.ack) return { rst: true, seq: header.ackNumber, ackNumber: 0 };
  return { rst: true, ack: true, seq: 0, ackNumber: seqAdd(header.seq, segmentLength(header, payloadLength)) };
}
