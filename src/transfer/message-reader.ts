/**
 * Splits the connection's byte stream into transfer messages. A frame's length is checked
 * against its type's limit before its body is gathered, so a peer cannot make us buffer more
 * than the largest message we accept (STYLE §7). Backpressure is the stream's own: bytes are
 * pulled only when the caller asks for the next message, so a receiver writing to a slow disk
 * stops the sender through the stream's flow control.
 */
import type { Readable } from 'node:stream';
import { TransferDecodeError } from './errors.js';
import { ACCEPT_ENTRY_LENGTH, FRAME_HEADER_LENGTH, MAX_ERROR_TEXT_BYTES, MessageType, SHA256_LENGTH, decodeMessage, messageTypeName, type Message } from './messages.js';

export interface MessageLimits {
  /** Largest OFFER body, bytes. Default 16 MiB. */
  maxOfferBytes?: number;
  /** Largest ACCEPT body follows from the most entries an offer may list. Default 100 000. */
  maxEntries?: number;
  /** Largest DATA body, bytes. Default 256 KiB (senders use 64 KiB). */
  maxDataBytes?: number;
}

export const DEFAULT_MAX_OFFER_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_ENTRIES = 100_000;
export const DEFAULT_MAX_DATA_BYTES = 256 * 1024;

/** The largest body a frame of `type` may have under `limits`; undefined for a type that does not exist. */
export function maxBodyLength(type: number, limits: MessageLimits = {}): number | undefined {
  switch (type) {
    case MessageType.Offer: return limits.maxOfferBytes ?? DEFAULT_MAX_OFFER_BYTES;
    case MessageType.Accept: return 4 + (limits.maxEntries ?? DEFAULT_MAX_ENTRIES) * ACCEPT_ENTRY_LENGTH;
    case MessageType.File: return 12;
    case MessageType.Data: return limits.maxDataBytes ?? DEFAULT_MAX_DATA_BYTES;
    case MessageType.FileEnd: return SHA256_LENGTH;
    case MessageType.Done: return 0;
    case MessageType.Summary: return 12;
    case MessageType.Error: return 1 + 255 + 2 + MAX_ERROR_TEXT_BYTES;
    default: return undefined;
  }
}

export class MessageReader {
  readonly #source: AsyncIterator<Buffer | string>;
  readonly #limits: MessageLimits;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #ended = false;

  constructor(stream: Readable, limits: MessageLimits = {}) {
    // Not destroyed when we stop reading: the stream's end belongs to the transfer's owner.
    this.#source = stream.iterator({ destroyOnReturn: false })[Symbol.asyncIterator]();
    this.#limits = limits;
  }

  /** The next message, or null when the stream ended cleanly between messages. Throws TransferDecodeError. */
  async next(): Promise<Message | null> {
    if (!(await this.#fill(1))) return null;
    if (!(await this.#fill(FRAME_HEADER_LENGTH))) throw new TransferDecodeError(`the stream ended inside a frame header (${this.#buffered} of ${FRAME_HEADER_LENGTH} bytes)`);
    const header = this.#take(FRAME_HEADER_LENGTH);
    const type = header[0]!;
    const length = header.readUInt32BE(1);
    const max = maxBodyLength(type, this.#limits);
    if (max === undefined) throw new TransferDecodeError(`frame of unknown type ${type}: the peer is not natpunch send/receive`, 0);
    if (length > max) throw new TransferDecodeError(`${messageTypeName(type)}: body of ${length} bytes, at most ${max} allowed`, 1, { tooLarge: true });
    if (!(await this.#fill(length))) throw new TransferDecodeError(`${messageTypeName(type)}: the stream ended after ${this.#buffered} of its ${length} bytes`);
    return decodeMessage(type, this.#take(length));
  }

  /** Pull until `n` bytes are buffered; false if the stream ends first. */
  async #fill(n: number): Promise<boolean> {
    while (this.#buffered < n) {
      if (this.#ended) return false;
      const { value, done } = await this.#source.next();
      if (done) {
        this.#ended = true;
        return false;
      }
      const chunk = typeof value === 'string' ? Buffer.from(value) : value;
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    return true;
  }

  #take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    let out: Buffer;
    const first = this.#chunks[0]!;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const chunk = this.#chunks[0]!;
        const used = Math.min(chunk.length, n - at);
        chunk.copy(out, at, 0, used);
        at += used;
        if (used === chunk.length) this.#chunks.shift();
        else this.#chunks[0] = chunk.subarray(used);
      }
    }
    this.#buffered -= n;
    return out;
  }
}
