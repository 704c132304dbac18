import type net from 'node:net';
import { StreamFramer } from './framing.js';

/**
 * One STUN (and TURN) client connection over TCP or TLS, as the server reads and writes it, with
 * the bounds that keep one client from taking more than its share (docs/decisions/014-server-limits.md):
 *
 * - Backpressure: frames are handled only while less than `highWaterMark` bytes of output wait
 *   to be sent; past it the socket is paused, and resumed as the output drains. A client that
 *   sends requests and never reads the answers gets its TCP window closed, not the server's
 *   memory (issue 11 measured 66 MB → 1.12 GB in 20 s from one such client before this).
 * - Output cap: whatever else is written for the client (a TURN relay's data from its peers)
 *   is dropped once `maxBufferedBytes` wait, as a full UDP buffer would drop it.
 * - Frame deadline: a frame must arrive whole within `frameTimeoutMs` of its first byte. The
 *   idle timeout is reset by every byte, so without this a client declaring a 2 KiB message
 *   and sending a byte every 20 s held its slot for ever (slowloris).
 * - Idle timeout: a connection on which nothing moves for `idleTimeoutMs` (neither a byte in
 *   nor a byte of output taken by the client) is closed; so is one paused because its client
 *   does not read.
 * @see RFC 8489 §6.2.2 (STUN over TCP), RFC 8656 §12.5 (ChannelData over streams)
 */
export interface StreamConnectionLimits {
  /** Largest frame accepted, bytes. */
  maxFrame: number;
  idleTimeoutMs: number;
  frameTimeoutMs: number;
  highWaterMark: number;
  maxBufferedBytes: number;
}

export interface StreamConnectionHandlers {
  /** A whole frame (STUN message or ChannelData). */
  frame(frame: Uint8Array): void;
  /** Bytes that cannot start a frame: the connection is closed after this. */
  garbage(error: Error): void;
  /** A frame arrived whole (the connection is in use). */
  progress(): void;
  /** A frame did not arrive whole in time: the connection is closed after this. */
  frameTimeout(): void;
  /** Reading paused (true) or resumed (false) for backpressure. */
  paused(paused: boolean): void;
}

export class StunStreamConnection {
  readonly socket: net.Socket;
  readonly #limits: StreamConnectionLimits;
  readonly #handlers: StreamConnectionHandlers;
  readonly #framer: StreamFramer;
  /** Whole frames not handled yet (while paused): at most one read's worth. */
  #pending: (Uint8Array | undefined)[] = [];
  #next = 0;
  #paused = false;
  #frameTimer: NodeJS.Timeout | undefined;
  /** Called as each write reaches the kernel: the output may have fallen below the mark. */
  readonly #written = (): void => {
    if (this.#paused) this.#pump();
  };

  constructor(socket: net.Socket, limits: StreamConnectionLimits, handlers: StreamConnectionHandlers) {
    this.socket = socket;
    this.#limits = limits;
    this.#handlers = handlers;
    this.#framer = new StreamFramer({ maxFrame: limits.maxFrame });
    socket.setTimeout(limits.idleTimeoutMs, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('close', () => {
      clearTimeout(this.#frameTimer);
      this.#pending = [];
      if (this.#paused) {
        this.#paused = false;
        handlers.paused(false);
      }
    });
  }

  /**
   * Queue bytes for the client. Returns false, writing nothing, when the output already holds
   * `maxBufferedBytes` (the caller counts the drop).
   */
  write(bytes: Uint8Array | readonly Uint8Array[]): boolean {
    const socket = this.socket;
    if (socket.destroyed) return false;
    const parts: readonly Uint8Array[] = bytes instanceof Uint8Array ? [bytes] : bytes;
    const size = parts.reduce((n, part) => n + part.byteLength, 0);
    if (socket.writableLength + size > this.#limits.maxBufferedBytes) return false;
    if (parts.length > 1) socket.cork();
    for (const part of parts) socket.write(part, this.#written);
    if (parts.length > 1) socket.uncork();
    return true;
  }

  #onData(chunk: Buffer): void {
    let frames: Uint8Array[];
    try {
      frames = this.#framer.push(chunk);
    } catch (error) {
      // A stream that stops making sense cannot be resynchronised: close it.
      this.#handlers.garbage(error as Error);
      this.socket.destroy();
      return;
    }
    // The deadline runs from the first byte of the frame being received: a completed frame
    // stops it, and the rest of this chunk (if any) starts the next one's.
    if (frames.length > 0) {
      clearTimeout(this.#frameTimer);
      this.#frameTimer = undefined;
    }
    if (this.#framer.buffered > 0 && this.#frameTimer === undefined) {
      this.#frameTimer = setTimeout(() => {
        this.#handlers.frameTimeout();
        this.socket.destroy();
      }, this.#limits.frameTimeoutMs);
    }
    for (const frame of frames) this.#pending.push(frame);
    this.#pump();
  }

  /** Handle pending frames while the output is below the mark; pause or resume reading to match. */
  #pump(): void {
    const socket = this.socket;
    while (this.#next < this.#pending.length && socket.writableLength < this.#limits.highWaterMark && !socket.destroyed) {
      const frame = this.#pending[this.#next]!;
      this.#pending[this.#next++] = undefined;
      this.#handlers.progress();
      this.#handlers.frame(frame);
    }
    if (this.#next === this.#pending.length) {
      this.#pending = [];
      this.#next = 0;
    }
    if (socket.destroyed) return;
    const blocked = this.#next < this.#pending.length || socket.writableLength >= this.#limits.highWaterMark;
    if (blocked && !this.#paused) {
      this.#paused = true;
      socket.pause();
      this.#handlers.paused(true);
    } else if (!blocked && this.#paused) {
      this.#paused = false;
      socket.resume();
      this.#handlers.paused(false);
    }
  }
}
