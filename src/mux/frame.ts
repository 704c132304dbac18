/**
 * Frame codec of the stream multiplexer: pure functions, no I/O (STYLE §1).
 *
 * Every frame is an 8-byte header and a payload (all integers big-endian, as RFC 9113 §4.1):
 *
 *   length (24) | type (8) | stream id (32) | payload (length bytes)
 *
 * Stream ids: the side that connected opens odd ids, the side that accepted even ones (RFC 9113
 * §5.1.1), each increasing; 0 is the session (GO_AWAY only). The decoder checks each type's
 * payload size and every limit before it waits for the payload, so a hostile length never
 * makes it buffer more than one maximum-size frame.
 */
import { MAX_FRAME_PAYLOAD, MAX_REASON_LENGTH, MAX_TARGET_LENGTH } from './limits.js';
import { protocolError } from './errors.js';
import { FrameType, frameTypeNames, MuxErrorCode } from './frame-type.js';

export const HEADER_LENGTH = 8;

export type Frame =
  | { type: FrameType.Open; streamId: number; target: string }
  | { type: FrameType.Data; streamId: number; data: Uint8Array }
  | { type: FrameType.WindowUpdate; streamId: number; increment: number }
  | { type: FrameType.Fin; streamId: number }
  | { type: FrameType.Reset; streamId: number; errorCode: number; reason: string }
  | { type: FrameType.GoAway; streamId: 0; lastStreamId: number; errorCode: number; reason: string };

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Encode one frame. Throws MuxError (ERR_MUX) for a frame this side must never send. */
export function encodeFrame(frame: Frame): Uint8Array {
  switch (frame.type) {
    case FrameType.Open: {
      const target = utf8.encode(frame.target);
      if (target.length === 0 || target.length > MAX_TARGET_LENGTH) throw protocolError(`OPEN: target of ${target.length} bytes, expected 1 to ${MAX_TARGET_LENGTH}`);
      return withHeader(frame, target);
    }
    case FrameType.Data:
      if (frame.data.length > MAX_FRAME_PAYLOAD) throw protocolError(`DATA: ${frame.data.length} bytes, at most ${MAX_FRAME_PAYLOAD}`, MuxErrorCode.FrameSizeError);
      return withHeader(frame, frame.data);
    case FrameType.WindowUpdate: {
      if (!Number.isInteger(frame.increment) || frame.increment < 1 || frame.increment > 0xffff_ffff) throw protocolError(`WINDOW_UPDATE: increment ${frame.increment}, expected 1 to 2^32-1`);
      const payload = new Uint8Array(4);
      new DataView(payload.buffer).setUint32(0, frame.increment);
      return withHeader(frame, payload);
    }
    case FrameType.Fin:
      return withHeader(frame, new Uint8Array(0));
    case FrameType.Reset: {
      const reason = truncatedReason(frame.reason);
      const payload = new Uint8Array(4 + reason.length);
      new DataView(payload.buffer).setUint32(0, frame.errorCode);
      payload.set(reason, 4);
      return withHeader(frame, payload);
    }
    case FrameType.GoAway: {
      const reason = truncatedReason(frame.reason);
      const payload = new Uint8Array(8 + reason.length);
      const view = new DataView(payload.buffer);
      view.setUint32(0, frame.lastStreamId);
      view.setUint32(4, frame.errorCode);
      payload.set(reason, 8);
      return withHeader(frame, payload);
    }
  }
}

function withHeader(frame: Frame, payload: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(HEADER_LENGTH + payload.length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, (payload.length << 8) | frame.type);
  view.setUint32(4, frame.streamId);
  bytes.set(payload, HEADER_LENGTH);
  return bytes;
}

/** A reason text cut to MAX_REASON_LENGTH bytes without splitting a character. */
function truncatedReason(text: string): Uint8Array {
  const bytes = utf8.encode(text);
  if (bytes.length <= MAX_REASON_LENGTH) return bytes;
  // Cut before a character's first byte: continuation bytes are 10xxxxxx.
  let cut = MAX_REASON_LENGTH;
  while (cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--;
  return bytes.subarray(0, cut);
}

/** The header's fields; throws MuxError when the type is unknown or its length is impossible. */
export function decodeHeader(bytes: Uint8Array, offset = 0): { length: number; type: FrameType; streamId: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, HEADER_LENGTH);
  const word = view.getUint32(0);
  const length = word >>> 8;
  const type = word & 0xff;
  const streamId = view.getUint32(4);
  if (!(type in frameTypeNames)) throw protocolError(`frame type 0x${type.toString(16)} is unknown (known: 0x0 to 0x5)`);
  const name = frameTypeNames[type as FrameType];
  const [min, max] = payloadBounds(type as FrameType);
  if (length < min || length > max) {
    throw protocolError(`${name}: payload of ${length} bytes, expected ${min === max ? min : `${min} to ${max}`}`, MuxErrorCode.FrameSizeError);
  }
  if ((type === FrameType.GoAway) !== (streamId === 0)) {
    throw protocolError(`${name}: stream id ${streamId}, expected ${type === FrameType.GoAway ? '0' : 'not 0'}`);
  }
  return { length, type: type as FrameType, streamId };
}

function payloadBounds(type: FrameType): [number, number] {
  switch (type) {
    case FrameType.Open: return [1, MAX_TARGET_LENGTH];
    case FrameType.Data: return [0, MAX_FRAME_PAYLOAD];
    case FrameType.WindowUpdate: return [4, 4];
    case FrameType.Fin: return [0, 0];
    case FrameType.Reset: return [4, 4 + MAX_REASON_LENGTH];
    case FrameType.GoAway: return [8, 8 + MAX_REASON_LENGTH];
  }
}

/** Decode one whole frame (header and exactly its payload). Throws MuxError on any fault. */
export function decodeFrame(bytes: Uint8Array): Frame {
  if (bytes.length < HEADER_LENGTH) throw protocolError(`frame of ${bytes.length} bytes, shorter than its ${HEADER_LENGTH}-byte header`, MuxErrorCode.FrameSizeError);
  const { length, type, streamId } = decodeHeader(bytes);
  if (bytes.length !== HEADER_LENGTH + length) throw protocolError(`${frameTypeNames[type]}: ${bytes.length - HEADER_LENGTH} payload bytes, header says ${length}`, MuxErrorCode.FrameSizeError);
  return decodePayload(type, streamId, bytes.subarray(HEADER_LENGTH));
}

export function decodePayload(type: FrameType, streamId: number, payload: Uint8Array): Frame {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
  switch (type) {
    case FrameType.Open:
      return { type, streamId, target: text('OPEN target', payload) };
    case FrameType.Data:
      return { type, streamId, data: payload };
    case FrameType.WindowUpdate: {
      const increment = view.getUint32(0);
      // RFC 9113 §6.9: "A receiver MUST treat the receipt of a WINDOW_UPDATE frame with a
      // flow-control window increment of 0 as a stream error of type PROTOCOL_ERROR".
      if (increment === 0) throw protocolError('WINDOW_UPDATE: increment 0, expected at least 1');
      return { type, streamId, increment };
    }
    case FrameType.Fin:
      return { type, streamId };
    case FrameType.Reset:
      return { type, streamId, errorCode: view.getUint32(0), reason: text('RESET reason', payload.subarray(4)) };
    case FrameType.GoAway:
      return { type, streamId: 0, lastStreamId: view.getUint32(0), errorCode: view.getUint32(4), reason: text('GO_AWAY reason', payload.subarray(8)) };
  }
}

function text(what: string, bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw protocolError(`${what}: not valid UTF-8`);
  }
}

/**
 * Frames from a byte stream cut anywhere: push() chunks, get the whole frames they complete.
 * Holds at most one partial frame (≤ HEADER_LENGTH + the largest payload).
 */
export class FrameDecoder {
  #pending: Uint8Array = new Uint8Array(0);

  /** Bytes held of a frame not yet complete. */
  get buffered(): number {
    return this.#pending.length;
  }

  /** The frames `chunk` completes, in order. Throws MuxError at the first faulty frame. */
  push(chunk: Uint8Array): Frame[] {
    let bytes = chunk;
    if (this.#pending.length > 0) {
      bytes = new Uint8Array(this.#pending.length + chunk.length);
      bytes.set(this.#pending);
      bytes.set(chunk, this.#pending.length);
    }
    const frames: Frame[] = [];
    let offset = 0;
    while (bytes.length - offset >= HEADER_LENGTH) {
      const { length, type, streamId } = decodeHeader(bytes, offset);
      if (bytes.length - offset - HEADER_LENGTH < length) break;
      const start = offset + HEADER_LENGTH;
      frames.push(decodePayload(type, streamId, bytes.subarray(start, start + length)));
      offset = start + length;
    }
    // Copied, not a view: a view would keep the whole (possibly large) chunk alive.
    this.#pending = offset === bytes.length ? new Uint8Array(0) : bytes.slice(offset);
    return frames;
  }
}
