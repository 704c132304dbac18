/**
 * Many logical streams over one reliable, ordered byte stream (a natpunch Connection, or any
 * Duplex): docs/decisions/012-multiplexing.md.
 *
 * The session reads the connection all the time and hands each frame to its stream, so one
 * stream whose reader stalls never blocks another: it only stops its own sender, by not
 * granting window (stream.ts). What the session holds is bounded by the limits (limits.ts):
 * MAX_STREAMS open per side, STREAM_WINDOW buffered per stream, one frame being parsed. A
 * frame that breaks the protocol — an unknown type, a size out of bounds, DATA beyond the
 * window, a stream past the limit, a frame for a stream never opened — ends the session: a
 * GO_AWAY with the error code goes out and the connection is destroyed.
 *
 * Events: 'stream' (MuxStream, target) for each stream the peer opens; 'goaway' (code, reason)
 * when the peer will accept no more streams; 'close' (MuxError | undefined) once the session
 * is over.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { MuxError, protocolError } from './errors.js';
import { encodeFrame, type Frame, FrameDecoder } from './frame.js';
import { FrameType, frameTypeNames, muxErrorName, MuxErrorCode } from './frame-type.js';
import { MAX_STREAMS } from './limits.js';
import { MuxStream, type StreamOwner } from './stream.js';

/** Options of {@link MuxSession}'s constructor. */
export interface MuxSessionOptions {
  /** The side that connected opens odd stream ids, the side that accepted even ones (RFC 9113 §5.1.1). */
  initiator: boolean;
}

const MAX_STREAM_ID = 0xffff_ffff;

/**
 * Many logical streams ({@link MuxStream}) over one reliable, ordered byte stream: a
 * {@link Connection}, or any Duplex. Each stream has its own 256 KiB flow-control window, so a
 * stalled reader never holds up another stream; a peer that breaks the protocol or its limits
 * ends the session with GO_AWAY and a {@link MuxError}. See docs/decisions/012-multiplexing.md.
 *
 * Both sides create one over the same connection, one with `initiator: true` (usually the side
 * that called `peer.connect()`), the other with `initiator: false`.
 *
 * Events:
 * - `'stream'` `(stream: MuxStream, target: string)`: the peer opened a stream for `target`.
 * - `'goaway'` `(code: number, reason: string)`: the peer will accept no more streams.
 * - `'close'` `(error: MuxError | undefined)`: the session is over (`undefined` after a clean close).
 */
export class MuxSession extends EventEmitter implements StreamOwner {
  readonly #connection: Duplex;
  readonly #initiator: boolean;
  readonly #decoder = new FrameDecoder();
  readonly #streams = new Map<number, MuxStream>();
  #nextId: number;
  /** The highest id the peer has opened (RFC 9113 §5.1.1: ids only grow). */
  #lastPeerId = 0;
  #ownOpen = 0;
  #peerOpen = 0;
  #goAwaySent = false;
  #goAwayReceived = false;
  #closed = false;
  #error: MuxError | undefined;
  #needDrain = false;
  #drainWaiters: ((error?: Error | null) => void)[] = [];

  constructor(connection: Duplex, options: MuxSessionOptions) {
    super();
    this.#connection = connection;
    this.#initiator = options.initiator;
    this.#nextId = options.initiator ? 1 : 2;
    connection.on('data', (chunk: Buffer) => this.#receive(chunk));
    connection.on('drain', () => this.#drained());
    connection.on('end', () => this.#end(new MuxError(MuxErrorCode.NoError, 'mux: the peer closed the connection')));
    connection.on('error', (error: Error) => this.#end(new MuxError(MuxErrorCode.InternalError, `mux: the connection failed: ${error.message}`, { cause: error })));
    connection.on('close', () => this.#end(new MuxError(MuxErrorCode.NoError, 'mux: the connection closed')));
  }

  /** Streams open now (either side's). */
  get streams(): number {
    return this.#streams.size;
  }

  /** Whether the session has ended (closed here, by the peer, or by a failure). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Why the session ended, once it has (undefined while it runs or after a clean close). */
  get error(): MuxError | undefined {
    return this.#error;
  }

  /** Open a stream to the peer for `target`. Throws MuxError when the session cannot take one. */
  open(target: string): MuxStream {
    if (this.#closed) throw this.#error ?? new MuxError(MuxErrorCode.NoError, 'mux: the session is closed');
    if (this.#goAwayReceived || this.#goAwaySent) throw new MuxError(MuxErrorCode.RefusedStream, 'mux: the session is going away: no new streams');
    if (this.#ownOpen >= MAX_STREAMS) throw new MuxError(MuxErrorCode.RefusedStream, `mux: ${MAX_STREAMS} streams already open (the most one side may have)`);
    if (this.#nextId > MAX_STREAM_ID) throw new MuxError(MuxErrorCode.RefusedStream, 'mux: stream ids exhausted; open a new session');
    const id = this.#nextId;
    this.#nextId += 2;
    const stream = new MuxStream(this, id, target);
    this.send({ type: FrameType.Open, streamId: id, target });
    this.#streams.set(id, stream);
    this.#ownOpen++;
    return stream;
  }

  /** Close the session: GO_AWAY (NO_ERROR), every open stream ended, the connection ended. */
  close(reason = ''): void {
    if (this.#closed) return;
    this.#sendGoAway(MuxErrorCode.NoError, reason);
    this.#connection.end();
    this.#end(new MuxError(MuxErrorCode.NoError, 'mux: the session was closed'), false);
  }

  // StreamOwner

  /** @internal Queue one frame on the connection (a stream's part of {@link StreamOwner}). */
  send(frame: Frame): void {
    if (this.#closed) return;
    if (!this.#connection.write(encodeFrame(frame))) this.#needDrain = true;
  }

  /** @internal Call `callback` once the connection takes more writes. */
  whenWritable(callback: (error?: Error | null) => void): void {
    if (this.#closed) callback(this.#error ?? new MuxError(MuxErrorCode.NoError, 'mux: the session is closed'));
    else if (this.#needDrain) this.#drainWaiters.push(callback);
    else callback();
  }

  /** @internal The stream needs no more frames. */
  streamDone(stream: MuxStream): void {
    if (this.#streams.get(stream.id) !== stream) return;
    this.#streams.delete(stream.id);
    if (this.#isOwn(stream.id)) this.#ownOpen--;
    else this.#peerOpen--;
  }

  #isOwn(id: number): boolean {
    return (id % 2 === 1) === this.#initiator;
  }

  #drained(): void {
    this.#needDrain = false;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const waiter of waiters) waiter();
  }

  #receive(chunk: Buffer): void {
    if (this.#closed) return;
    try {
      for (const frame of this.#decoder.push(chunk)) {
        this.#handle(frame);
        if (this.#closed) return;
      }
    } catch (error) {
      this.#violation(error instanceof MuxError ? error : protocolError(`frame handling failed: ${(error as Error).message}`, MuxErrorCode.InternalError));
    }
  }

  #handle(frame: Frame): void {
    if (frame.type === FrameType.GoAway) return this.#receiveGoAway(frame.lastStreamId, frame.errorCode, frame.reason);
    if (frame.type === FrameType.Open) return this.#receiveOpen(frame.streamId, frame.target);
    const stream = this.#streams.get(frame.streamId);
    if (!stream) {
      // RFC 9113 §5.1: a frame on an idle stream (never opened) is a PROTOCOL_ERROR; one on a
      // closed stream (reset here while it was in flight) is ignored.
      if (this.#isIdle(frame.streamId)) throw protocolError(`${frameTypeNames[frame.type]} on stream ${frame.streamId}, which was never opened`);
      return;
    }
    switch (frame.type) {
      case FrameType.Data: return stream.receiveData(frame.data);
      case FrameType.WindowUpdate: return stream.receiveWindowUpdate(frame.increment);
      case FrameType.Fin: return stream.receiveFin();
      case FrameType.Reset: return stream.receiveReset(frame.errorCode, frame.reason);
    }
  }

  #isIdle(id: number): boolean {
    return this.#isOwn(id) ? id >= this.#nextId : id > this.#lastPeerId;
  }

  #receiveOpen(id: number, target: string): void {
    if (this.#isOwn(id)) throw protocolError(`OPEN of stream ${id}, an id of this side's (the peer opens ${this.#initiator ? 'even' : 'odd'} ids)`);
    if (id <= this.#lastPeerId) throw protocolError(`OPEN of stream ${id}, not above the last one opened (${this.#lastPeerId})`);
    this.#lastPeerId = id;
    if (this.#peerOpen >= MAX_STREAMS) throw protocolError(`OPEN of stream ${id} beyond the limit of ${MAX_STREAMS} open streams`, MuxErrorCode.RefusedStream);
    const stream = new MuxStream(this, id, target);
    this.#streams.set(id, stream);
    this.#peerOpen++;
    // After our GO_AWAY no new stream is served (RFC 9113 §6.8); nor when no one listens.
    if (this.#goAwaySent || this.listenerCount('stream') === 0) {
      stream.reset(MuxErrorCode.RefusedStream, 'not accepting streams');
      return;
    }
    this.emit('stream', stream, target);
  }

  #receiveGoAway(lastStreamId: number, code: number, reason: string): void {
    this.#goAwayReceived = true;
    if (code !== MuxErrorCode.NoError) {
      this.#end(new MuxError(code, `mux: the peer ended the session (${muxErrorName(code)})${reason ? `: ${reason}` : ''}`));
      this.#connection.destroy();
      return;
    }
    // Our streams above lastStreamId were never seen by the peer: refused, safe to retry.
    for (const stream of [...this.#streams.values()]) {
      if (this.#isOwn(stream.id) && stream.id > lastStreamId) stream.receiveReset(MuxErrorCode.RefusedStream, 'the peer is going away');
    }
    this.emit('goaway', code, reason);
  }

  #sendGoAway(code: number, reason: string): void {
    if (this.#goAwaySent || this.#closed) return;
    this.#goAwaySent = true;
    this.send({ type: FrameType.GoAway, streamId: 0, lastStreamId: this.#lastPeerId, errorCode: code, reason });
  }

  /** The peer broke the protocol: tell it why (GO_AWAY), then reset the connection. */
  #violation(error: MuxError): void {
    this.#sendGoAway(error.muxCode, error.message);
    this.#end(error);
    this.#connection.destroy(error);
  }

  #end(reason: MuxError, isError = reason.muxCode !== MuxErrorCode.NoError): void {
    if (this.#closed) return;
    this.#closed = true;
    if (isError) this.#error = reason;
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    this.#ownOpen = 0;
    this.#peerOpen = 0;
    for (const stream of streams) stream.sessionEnded(reason);
    for (const waiter of this.#drainWaiters.splice(0)) waiter(reason);
    // The peer's end (or GO_AWAY) ends ours too, so the connection below can close.
    if (!this.#connection.destroyed && !this.#connection.writableEnded) this.#connection.end();
    this.emit('close', this.#error);
  }
}


