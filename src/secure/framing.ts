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

/** Reassembles messages from stream chunks of any size. Buffers at most one partial frame. */
export class FrameDecoder {
  #pending: Uint8Array = new Uint8Array(0);

  /** Bytes held back waiting for the rest of a frame. */
  get buffered(): number {
    return this.#pending.length;
  }

  /** Feeds a chunk; returns the messages it completed, in order. */
  push(chunk: Uint8Array): Uint8Array[] {
    // A plain Uint8Array view: Buffer.prototype.slice would hand out views of the caller's memory.
    let data = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
    if (this.#pending.length > 0) {
      data = new Uint8Array(this.#pending.length + chunk.length);
      data.set(this.#pending);
      data.set(chunk, this.#pending.length);
    }
    const messages: Uint8Array[] = [];
    let offset = 0;
    while (data.length - offset >= PREFIX_LENGTH) {
      const length = (data[offset]! << 8) | data[offset + 1]!;
      if (data.length - offset - PREFIX_LENGTH < length) break;
      messages.push(data.slice(offset + PREFIX_LENGTH, offset + PREFIX_LENGTH + length));
      offset += PREFIX_LENGTH + length;
    }
    this.#pending = data.slice(offset);
    return messages;
  }
}
