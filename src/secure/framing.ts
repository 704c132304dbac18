/**
 * Noise messages over a byte stream (TCP): each message is prefixed with its length as a
 * 16-bit big-endian integer, as Noise leaves framing to the application and libp2p, Nebula and
 * others do. Datagram transports need no framing: one message per packet.
 * @see Noise rev 34 §3 (65535-byte limit), §13 (application responsibilities)
 */
import { NoiseError } from './errors.js';
import { MAX_MESSAGE_LENGTH } from './handshake-state.js';

const PREFIX_LENGTH = 2;

export function encodeFrame(message: Uint8Array): Uint8Array {
  if (message.length > MAX_MESSAGE_LENGTH) {
    throw new NoiseError('message-too-large', `frame: message length ${message.length}, limit ${MAX_MESSAGE_LENGTH}`);
  }
  const frame = new Uint8Array(PREFIX_LENGTH + message.length);
  frame[0] = message.length >>> 8;
  frame[1] = message.length & 0xff;
  frame.set(message, PREFIX_LENGTH);
  return frame;
}

/** Anything that encrypts one message, leaving `headroom` bytes in front (SecureSession). */
export interface MessageSealer {
  encrypt(plaintext: Uint8Array, headroom: number): Uint8Array;
}

/**
 * encodeFrame(session.encrypt(plaintext)) with one copy fewer: the ciphertext is written behind
 * room for the length prefix, which is then filled in.
 */
export function sealFrame(session: MessageSealer, plaintext: Uint8Array): Uint8Array {
  const frame = session.encrypt(plaintext, PREFIX_LENGTH);
  const length = frame.length - PREFIX_LENGTH;
  if (length > MAX_MESSAGE_LENGTH) {
    throw new NoiseError('message-too-large', `frame: message length ${length}, limit ${MAX_MESSAGE_LENGTH}`);
  }
  frame[0] = length >>> 8;
  frame[1] = length & 0xff;
  return frame;
}

/**
 * Reassembles messages from stream chunks of any size. Buffers at most one partial frame, and
 * copies each byte once: a frame's buffer is allocated when its length prefix is known and
 * filled as chunks arrive (the naive concat-and-rescan is quadratic in the frame size when a
 * 64 KiB frame arrives in ~1200-byte transport chunks).
 */
export class FrameDecoder {
  /** First byte of a length prefix split across chunks. */
  #prefixByte = -1;
  #frame: Uint8Array | undefined;
  #filled = 0;

  /** Bytes held back waiting for the rest of a frame. */
  get buffered(): number {
    return (this.#prefixByte >= 0 ? 1 : 0) + (this.#frame ? PREFIX_LENGTH + this.#filled : 0);
  }

  /** Feeds a chunk; returns the messages it completed, in order (each in its own memory). */
  push(chunk: Uint8Array): Uint8Array[] {
    const messages: Uint8Array[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      if (!this.#frame) {
        let length: number;
        if (this.#prefixByte >= 0) {
          length = (this.#prefixByte << 8) | chunk[offset]!;
          this.#prefixByte = -1;
          offset += 1;
        } else if (chunk.length - offset >= PREFIX_LENGTH) {
          length = (chunk[offset]! << 8) | chunk[offset + 1]!;
          offset += PREFIX_LENGTH;
        } else {
          this.#prefixByte = chunk[offset]!;
          offset += 1;
          break;
        }
        // Every byte is written before the frame is handed out: no need to zero it first.
        const memory = Buffer.allocUnsafeSlow(length);
        this.#frame = new Uint8Array(memory.buffer, memory.byteOffset, length);
        this.#filled = 0;
      }
      const take = Math.min(this.#frame.length - this.#filled, chunk.length - offset);
      this.#frame.set(chunk.subarray(offset, offset + take), this.#filled);
      this.#filled += take;
      offset += take;
      if (this.#filled === this.#frame.length) {
        messages.push(this.#frame);
        this.#frame = undefined;
      }
    }
    return messages;
  }
}
