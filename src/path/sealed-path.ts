/**
 * What the stream sees of one raw path: a DatagramPath whose every datagram is sealed with the
 * connection's datagram cipher (one AEAD per datagram, frame.ts). The one cipher serves every
 * path of the connection, so its counter — the nonce — never repeats whichever path a packet
 * takes, and the peer's one replay window covers them all.
 */
import type { DatagramCipher } from '../secure/index.js';
import type { DatagramPath } from '../transport/datagram-path.js';
import { FrameKind, SEALED_AD, SEALED_HEADER_LENGTH, SEALED_OVERHEAD } from './frame.js';
import type { RawPath } from './raw-path.js';

export class SealedPath implements DatagramPath {
  readonly raw: RawPath;
  readonly maxPayload: number;
  readonly #cipher: DatagramCipher;
  /** Room the raw path wants in front of a frame, plus the SEALED kind byte. */
  readonly #headroom: number;
  readonly sendBatch: ((buffers: Uint8Array[]) => void) | undefined;
  #handler: ((datagram: Uint8Array) => void) | undefined;
  /** Called on every send: the manager counts what goes out on each path. */
  readonly #onSend: (bytes: number) => void;

  constructor(raw: RawPath, cipher: DatagramCipher, onSend: (bytes: number) => void = () => undefined) {
    this.raw = raw;
    this.#cipher = cipher;
    this.#onSend = onSend;
    this.maxPayload = raw.maxPayload - SEALED_OVERHEAD;
    this.#headroom = (raw.sendWithHeadroom ? raw.headroom ?? 0 : 0) + SEALED_HEADER_LENGTH;
    const rawBatch = raw.sendBatch?.bind(raw);
    this.sendBatch = rawBatch && raw.sendWithHeadroom
      ? (buffers) => {
        // One allocation for the burst's frames (DatagramCipher.sealBatch); the raw path hands
        // them all to the kernel at once.
        const frames = this.#cipher.sealBatch(buffers, SEALED_AD, this.#headroom);
        for (const frame of frames) this.#frame(frame);
        rawBatch(frames);
      }
      : undefined;
  }

  /** The frame for `datagram`, laid out for the raw path's sendWithHeadroom (or bare, without it). */
  #seal(datagram: Uint8Array): Uint8Array {
    return this.#frame(this.#cipher.seal(datagram, SEALED_AD, this.#headroom));
  }

  /** A sealed packet as a SEALED frame: its kind byte, and counted as sent. */
  #frame(frame: Uint8Array): Uint8Array {
    frame[this.#headroom - SEALED_HEADER_LENGTH] = FrameKind.Sealed;
    this.#onSend(frame.length);
    return frame;
  }

  send(datagram: Uint8Array): void {
    const frame = this.#seal(datagram);
    if (this.raw.sendWithHeadroom) this.raw.sendWithHeadroom(frame);
    else this.raw.send(frame);
  }

  onDatagram(handler: (datagram: Uint8Array) => void): void {
    this.#handler = handler;
  }

  /** An opened stream packet that arrived on this path. */
  deliver(datagram: Uint8Array): boolean {
    if (!this.#handler) return false;
    this.#handler(datagram);
    return true;
  }
}
