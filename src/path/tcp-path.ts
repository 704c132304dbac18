/**
 * A TCP connection as a datagram path: each frame (frame.ts) goes as a 16-bit length and the
 * frame, the framing RFC 4571 §2 defines for RTP and ICE-TCP, and the one TURN-over-TCP
 * (ChannelData, RFC 8656 §12.5) and Tailscale's DERP use to carry datagrams over TCP.
 *
 * Why not hand the stream the TCP byte stream directly, as natpunch once did: then a connection
 * born on TCP could never move to UDP, nor back, and TCP and UDP would need two secure layers.
 * Over this path the one stream (with its own reliability on top of TCP's) and the one path
 * manager serve every kind of path; docs/decisions/006-paths.md measures what it costs.
 *
 * A datagram path may drop, and this one does so on purpose: when more than `sendLimit` bytes
 * wait in the socket, new frames are dropped rather than queued without end. The stream reads
 * that as loss and slows down; otherwise its congestion window would grow into the socket's
 * buffer and every RTT-based timer above would be measuring the queue.
 */
import type { Socket } from 'node:net';
import { isIPv4 } from 'node:net';
import { TransportError } from '../transport/errors.js';
import { formatAddress, unmappedIp } from '../wire/index.js';
import type { RawPath } from './raw-path.js';
import type { FrameHandler } from './udp-endpoint.js';

const LENGTH_PREFIX = 2;
/** What the 16-bit length can say. */
const MAX_FRAME_LENGTH = 0xffff;
/** Frames as large as over UDP, so the stream keeps its packet size when it moves. */
export const TCP_PATH_PAYLOAD = 1200;
/** Default bytes allowed to wait in the socket before frames are dropped (about 200 frames). */
export const DEFAULT_TCP_SEND_LIMIT = 256 * 1024;

export interface TcpPathOptions {
  technique: string;
  sendLimit?: number;
}

export class TcpRawPath implements RawPath {
  readonly kind = 'direct-tcp' as const;
  readonly maxPayload = TCP_PATH_PAYLOAD;
  readonly headroom = LENGTH_PREFIX;
  readonly remote: string;
  readonly technique: string;
  readonly socket: Socket;
  readonly #sendLimit: number;
  #handlers: FrameHandler[] = [];
  #closeHandlers: Array<(error?: Error) => void> = [];
  #pending: Buffer | undefined;
  #open = true;
  /** Frames dropped because the socket's send buffer was full. */
  dropped = 0;

  constructor(socket: Socket, options: TcpPathOptions) {
    this.socket = socket;
    this.technique = options.technique;
    this.#sendLimit = options.sendLimit ?? DEFAULT_TCP_SEND_LIMIT;
    const host = unmappedIp(socket.remoteAddress ?? '') ?? '0.0.0.0';
    this.remote = formatAddress({ family: isIPv4(host) ? 4 : 6, address: host, port: socket.remotePort ?? 0 });
    socket.setNoDelay(true);
    socket.on('data', this.#onData);
    socket.on('error', (error) => this.#fail(error));
    socket.on('close', () => this.#fail(new TransportError(`TCP path to ${this.remote}: the connection closed`)));
    socket.on('end', () => socket.end());
  }

  get open(): boolean {
    return this.#open;
  }

  readonly #onData = (chunk: Buffer): void => {
    let data = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    let offset = 0;
    while (data.length - offset >= LENGTH_PREFIX) {
      const length = data.readUInt16BE(offset);
      if (data.length - offset - LENGTH_PREFIX < length) break;
      const frame = data.subarray(offset + LENGTH_PREFIX, offset + LENGTH_PREFIX + length);
      offset += LENGTH_PREFIX + length;
      if (length === 0) continue;
      for (const handler of this.#handlers) handler(frame);
      if (!this.#open) return;
    }
    data = data.subarray(offset);
    this.#pending = data.length > 0 ? Buffer.from(data) : undefined;
  };

  send(frame: Uint8Array): void {
    const buffer = Buffer.allocUnsafe(LENGTH_PREFIX + frame.length);
    buffer.set(frame, LENGTH_PREFIX);
    this.sendWithHeadroom(buffer);
  }

  /** `buffer`: two bytes for the length, then the frame. */
  sendWithHeadroom(buffer: Uint8Array): void {
    if (!this.#open || this.socket.destroyed) return;
    if (this.socket.writableLength > this.#sendLimit) {
      this.dropped++;
      return;
    }
    const length = buffer.length - LENGTH_PREFIX;
    if (length > MAX_FRAME_LENGTH) throw new TransportError(`TCP path to ${this.remote}: frame length ${length}, expected at most ${MAX_FRAME_LENGTH}`);
    buffer[0] = length >>> 8;
    buffer[1] = length & 0xff;
    this.socket.write(buffer);
  }

  /** A burst in one write system call where the socket can (cork). */
  sendBatch(buffers: Uint8Array[]): void {
    this.socket.cork();
    for (const buffer of buffers) this.sendWithHeadroom(buffer);
    this.socket.uncork();
  }

  onDatagram(handler: FrameHandler): void {
    this.#handlers.push(handler);
  }

  onClose(handler: (error?: Error) => void): void {
    this.#closeHandlers.push(handler);
  }

  #fail(error: Error): void {
    if (!this.#open) return;
    this.#open = false;
    const handlers = this.#closeHandlers;
    this.#closeHandlers = [];
    this.#handlers = [];
    for (const handler of handlers) handler(error);
  }

  close(): void {
    if (!this.#open) {
      this.socket.destroy();
      return;
    }
    this.#open = false;
    this.#handlers = [];
    this.#closeHandlers = [];
    // Frames already written still go out; then FIN. A peer that never closes its side is cut
    // off when the socket is destroyed by the far end's close or our process exit.
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 5_000).unref();
  }
}
