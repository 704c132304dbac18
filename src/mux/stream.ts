/**
 * One logical stream of a MuxSession: a Node Duplex with backpressure both ways.
 *
 * - Sending: `write()` cuts data into DATA frames of at most MAX_FRAME_PAYLOAD bytes and never
 *   sends more than the window the peer granted; when it is used up, the write waits for a
 *   WINDOW_UPDATE (RFC 9113 §6.9), so `write()` returns false and a pipe pauses.
 * - Receiving: DATA waits in the readable buffer until the reader takes it; only then does the
 *   window get granted again (half a window at a time). A reader that stalls stops its own
 *   sender, never the session: the session keeps reading the connection for the other streams.
 * - `end()` sends FIN (half-close); the peer's FIN ends the readable side.
 * - `destroy()` before both sides have ended, or `reset(code)`, sends RESET; the peer's RESET
 *   destroys this stream with a MuxStreamResetError.
 */
import { Duplex } from 'node:stream';
import { MuxStreamResetError, protocolError } from './errors.js';
import type { Frame } from './frame.js';
import { FrameType, MuxErrorCode } from './frame-type.js';
import { MAX_FRAME_PAYLOAD, STREAM_WINDOW, WINDOW_UPDATE_THRESHOLD } from './limits.js';
import { halfCloseIterator } from '../half-close-iterator.js';

/** RFC 9113 §6.9.1: a window may never exceed 2^31-1; more is a FLOW_CONTROL_ERROR. */
const MAX_WINDOW = 0x7fff_ffff;

/** What a stream needs from its session. */
export interface StreamOwner {
  /** Queue one frame on the connection (dropped once the session has closed). */
  send(frame: Frame): void;
  /** Call `callback` once the connection takes more writes (at once if it does now). */
  whenWritable(callback: (error?: Error | null) => void): void;
  /** The stream needs no more frames: both FINs, or a RESET either way. */
  streamDone(stream: MuxStream): void;
}

interface PendingWrite {
  chunk: Buffer;
  offset: number;
  callback: (error?: Error | null) => void;
}

/**
 * One logical stream of a {@link MuxSession}: a Node Duplex with backpressure both ways. Get one
 * from `session.open(target)` or the session's `'stream'` event. `end()` half-closes (FIN);
 * `destroy()` before both sides ended, or `reset(code)`, sends RESET, and the peer's RESET
 * destroys this stream with a {@link MuxStreamResetError}.
 */
export class MuxStream extends Duplex {
  /** The stream id: odd for streams the initiator opened, even for the other side's. */
  readonly id: number;
  /** What the opener said the stream is for (OPEN's target). */
  readonly target: string;
  readonly #owner: StreamOwner;
  #sendWindow = STREAM_WINDOW;
  /** Bytes the peer may still send before our next WINDOW_UPDATE. */
  #receiveWindow = STREAM_WINDOW;
  /** Bytes pushed to the readable side so far, and how many of those the window was reopened for. */
  #delivered = 0;
  #granted = 0;
  #pending: PendingWrite | null = null;
  #finSent = false;
  #finReceived = false;
  /** A RESET went either way, or the session ended: no frame for this stream any more. */
  #gone = false;

  /**
   * `for await` reads until the peer's end and leaves this side writable (Node's default
   * iterator would destroy it, an abort): see half-close-iterator.ts. Leaving early destroys.
   */
  override [Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined> {
    return halfCloseIterator(this);
  }

  /** @internal Streams are made by their session (`open()`, `'stream'`). */
  constructor(owner: StreamOwner, id: number, target: string) {
    // The readable buffer holds at most the window the peer may fill: its high-water mark is
    // that window, so reads (and the grants they cause) keep pace with a draining reader.
    super({ allowHalfOpen: true, readableHighWaterMark: STREAM_WINDOW, writableHighWaterMark: MAX_FRAME_PAYLOAD * 4 });
    this.#owner = owner;
    this.id = id;
    this.target = target;
  }

  /** Bytes this side may still send before the peer grants more (for diagnostics and tests). */
  get sendWindow(): number {
    return this.#sendWindow;
  }

  /** Abort the stream with `code` (a MuxErrorCode) and a reason the peer sees; destroys it here without an error. */
  reset(code: number = MuxErrorCode.Cancel, reason = ''): void {
    if (!this.#gone) {
      this.#gone = true;
      this.#owner.send({ type: FrameType.Reset, streamId: this.id, errorCode: code, reason });
      this.#owner.streamDone(this);
    }
    this.#failPending(new MuxStreamResetError(code, reason));
    this.destroy();
  }

  /** @internal */
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#pending = { chunk, offset: 0, callback };
    this.#flush();
  }

  /** @internal */
  override _final(callback: (error?: Error | null) => void): void {
    if (!this.#gone) {
      this.#finSent = true;
      this.#owner.send({ type: FrameType.Fin, streamId: this.id });
      this.#maybeDone();
    }
    callback();
  }

  /** @internal */
  override _read(): void {
    this.#maybeGrant();
  }

  /**
   * Every consumer takes data through read() (flowing mode and pipe() too), so this is where the
   * window reopens. _read() alone would not do: Node calls it once, then not again until a
   * push(), and with the window used up no push comes.
   */
  override read(size?: number): any {
    const chunk: unknown = super.read(size);
    this.#maybeGrant();
    return chunk;
  }

  /** @internal */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Destroyed before both directions ended: tell the peer (RFC 9113 §8.1: CANCEL when the
    // response is no longer needed; INTERNAL_ERROR when something here failed).
    if (!this.#gone && !(this.#finSent && this.#finReceived)) {
      this.#gone = true;
      this.#owner.send({ type: FrameType.Reset, streamId: this.id, errorCode: error ? MuxErrorCode.InternalError : MuxErrorCode.Cancel, reason: error?.message ?? '' });
      this.#owner.streamDone(this);
    }
    this.#failPending(error ?? new MuxStreamResetError(MuxErrorCode.Cancel, 'destroyed'));
    callback(error);
  }

  /** @internal DATA from the peer. RFC 9113 §6.9.1: more than the window is a FLOW_CONTROL_ERROR. */
  receiveData(data: Uint8Array): void {
    if (this.#finReceived) throw protocolError(`DATA on stream ${this.id} after its FIN`, MuxErrorCode.StreamClosed);
    if (data.length > this.#receiveWindow) throw protocolError(`DATA of ${data.length} bytes on stream ${this.id}, window ${this.#receiveWindow}`, MuxErrorCode.FlowControlError);
    this.#receiveWindow -= data.length;
    this.#delivered += data.length;
    if (this.destroyed) return; // reset locally while DATA was in flight: dropped
    this.push(data);
    this.#maybeGrant();
  }

  /** @internal WINDOW_UPDATE from the peer. */
  receiveWindowUpdate(increment: number): void {
    if (this.#sendWindow + increment > MAX_WINDOW) throw protocolError(`WINDOW_UPDATE on stream ${this.id} takes the window past 2^31-1`, MuxErrorCode.FlowControlError);
    this.#sendWindow += increment;
    this.#flush();
  }

  /** @internal FIN from the peer. */
  receiveFin(): void {
    if (this.#finReceived) throw protocolError(`second FIN on stream ${this.id}`, MuxErrorCode.StreamClosed);
    this.#finReceived = true;
    this.push(null);
    this.#maybeDone();
  }

  /** @internal RESET from the peer. */
  receiveReset(code: number, reason: string): void {
    this.#gone = true;
    this.#owner.streamDone(this);
    this.destroy(new MuxStreamResetError(code, reason));
  }

  /** @internal The session ended under the stream: no frames any more; destroyed with `error` unless it had finished both ways. */
  sessionEnded(error: Error): void {
    const complete = this.#finSent && this.#finReceived;
    this.#gone = true;
    if (!complete) this.destroy(error);
  }

  #flush(): void {
    const pending = this.#pending;
    if (!pending || this.#gone) return;
    while (pending.offset < pending.chunk.length && this.#sendWindow > 0) {
      const size = Math.min(pending.chunk.length - pending.offset, this.#sendWindow, MAX_FRAME_PAYLOAD);
      this.#owner.send({ type: FrameType.Data, streamId: this.id, data: pending.chunk.subarray(pending.offset, pending.offset + size) });
      pending.offset += size;
      this.#sendWindow -= size;
    }
    if (pending.offset < pending.chunk.length) return; // waits for WINDOW_UPDATE
    this.#pending = null;
    this.#owner.whenWritable(pending.callback);
  }

  /** Reopen the window for what the reader has taken, once that is half a window. */
  #maybeGrant(): void {
    if (this.#gone || this.#finReceived) return;
    const taken = this.#delivered - this.readableLength;
    const increment = taken - this.#granted;
    if (increment < WINDOW_UPDATE_THRESHOLD) return;
    this.#granted = taken;
    this.#receiveWindow += increment;
    this.#owner.send({ type: FrameType.WindowUpdate, streamId: this.id, increment });
  }

  #maybeDone(): void {
    if (this.#finSent && this.#finReceived && !this.#gone) {
      this.#gone = true;
      this.#owner.streamDone(this);
    }
  }

  #failPending(error: Error): void {
    const pending = this.#pending;
    this.#pending = null;
    pending?.callback(error);
  }
}
