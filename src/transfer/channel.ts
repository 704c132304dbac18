/**
 * One side's end of a transfer conversation over a Duplex: framed writes with backpressure,
 * message reads, the peer's ERROR turned into a TransferError, and our own failure told to the
 * peer before the stream is left. Shared by sender.ts and receiver.ts.
 */
import type { Duplex } from 'node:stream';
import { AbortedError, NatpunchError } from '../errors.js';
import { TransferDecodeError, TransferError, isTransferFailure } from './errors.js';
import { encodeMessage, type Message } from './messages.js';
import { MessageReader, type MessageLimits } from './message-reader.js';

/** How long a failing side waits for its ERROR to be acknowledged before giving up on the stream. */
const ERROR_FLUSH_MS = 2000;

export type Side = 'sender' | 'receiver';

export class Channel {
  readonly #stream: Duplex;
  readonly #reader: MessageReader;
  readonly #peer: Side;
  /** Aborted when the transfer must stop: the signal fired, or the peer sent ERROR (once watched). */
  readonly #stop = new AbortController();
  #watched: Promise<Message | null> | undefined;

  constructor(stream: Duplex, side: Side, options: { signal?: AbortSignal; limits?: MessageLimits } = {}) {
    this.#stream = stream;
    this.#reader = new MessageReader(stream, options.limits);
    this.#peer = side === 'sender' ? 'receiver' : 'sender';
    const signal = options.signal;
    if (signal) {
      const onAbort = (): void => this.#stop.abort(new AbortedError(`the ${side} was interrupted (Ctrl-C or SIGTERM); what arrived is kept: sending again resumes`));
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
    // A stream error reaches us through reads and 'close'; unheard, it would crash the process.
    stream.on('error', () => undefined);
  }

  /** Write messages (or raw frame pieces) and wait while the stream holds too much. */
  async write(...pieces: Array<Message | Uint8Array>): Promise<void> {
    this.#check();
    let ok = true;
    for (const piece of pieces) ok = this.#stream.write(piece instanceof Uint8Array ? piece : encodeMessage(piece));
    if (!ok) await this.#whileStopped(this.#drained());
  }

  /**
   * The next message from the peer (null: it ended its side). The peer's ERROR is thrown as a
   * TransferError with `remote` set; a message of a type in `expected` is returned, any other is
   * a 'protocol' failure.
   */
  async read(expected: readonly Message['type'][], during: string): Promise<Message | null> {
    const pending = this.#watched ?? this.#reader.next();
    this.#watched = undefined;
    const message = await this.#whileStopped(pending.catch((error: unknown) => { throw asProtocol(error, this.#peer); }));
    if (message === null) return null;
    if (message.type === 'error') throw remoteError(message, this.#peer);
    if (!expected.includes(message.type)) {
      throw new TransferError('protocol', `the ${this.#peer} sent ${wireName(message.type)} ${during}, expected ${expected.map(wireName).join(' or ')}`);
    }
    return message;
  }

  /**
   * Start reading the peer's next message in the background, so an ERROR the peer sends while
   * we write stops us at once; the next read() returns what it got.
   */
  watch(): void {
    this.#watched = this.#reader.next();
    this.#watched.then((message) => {
      if (message?.type === 'error') this.#stop.abort(remoteError(message, this.#peer));
    }, (error: unknown) => this.#stop.abort(asProtocol(error, this.#peer)));
  }

  /** End our side of the stream and wait for the peer to end its own (the conversation's close). */
  async close(during: string): Promise<void> {
    this.#stream.end();
    const last = await this.read([], during);
    if (last !== null) throw new TransferError('protocol', `the ${this.#peer} sent more after ${during}`);
  }

  /**
   * Tell the peer why we stop (best effort: an ERROR frame and our end of the stream), and give
   * it a moment to be delivered. Returns the error to throw: the peer's own, if it spoke first.
   */
  async fail(error: unknown): Promise<unknown> {
    const reason = this.#stop.signal.aborted && (this.#stop.signal.reason as TransferError)?.remote ? this.#stop.signal.reason : error;
    if (this.#stream.destroyed || this.#stream.writableEnded) return reason;
    if ((reason as TransferError)?.remote) {
      // The peer has ended its side after its ERROR: end ours, so the connection closes cleanly.
      this.#stream.end();
      return reason;
    }
    const local = reason instanceof TransferError ? reason
      : NatpunchError.is(reason) && reason.code === 'ERR_ABORTED' ? new TransferError('aborted', reason.message)
        : new TransferError('protocol', (reason as Error)?.message ?? String(reason));
    try {
      this.#stream.end(encodeMessage({ type: 'error', reason: local.reason, message: local.message }));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, ERROR_FLUSH_MS);
        function done(): void { clearTimeout(timer); resolve(); }
        this.#stream.once('finish', done);
        this.#stream.once('close', done);
      });
    } catch {
      // the stream is gone: nobody to tell
    }
    return reason;
  }

  /** 'drain', or a failure when the stream closes first (a read learns of that from the stream itself). */
  #drained(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onClose = (): void => reject(new TransferError('closed', `the connection to the ${this.#peer} closed`));
      this.#stream.once('close', onClose);
      this.#stream.once('drain', () => { this.#stream.off('close', onClose); resolve(); });
    });
  }

  #check(): void {
    if (this.#stop.signal.aborted) throw this.#stop.signal.reason;
  }

  /** `promise`, unless the transfer is stopped first. */
  #whileStopped<T>(promise: Promise<T>): Promise<T> {
    this.#check();
    const signal = this.#stop.signal;
    return new Promise<T>((resolve, reject) => {
      const onStop = (): void => reject(signal.reason);
      signal.addEventListener('abort', onStop, { once: true });
      promise.then(
        (value) => { signal.removeEventListener('abort', onStop); resolve(value); },
        (error: unknown) => { signal.removeEventListener('abort', onStop); reject(error); },
      );
    });
  }
}

/** 'file-end' → 'FILE_END', as the decision record names messages. */
function wireName(type: Message['type']): string {
  return type.toUpperCase().replace('-', '_');
}

function remoteError(message: { reason: string; message: string }, peer: Side): TransferError {
  const reason = isTransferFailure(message.reason) ? message.reason : 'protocol';
  // The peer's words reach a terminal: no escape sequence of theirs gets through.
  // eslint-disable-next-line no-control-regex
  const text = message.message.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return new TransferError(reason, `the ${peer} reports: ${text}`, { remote: true });
}

/** A decode error is the peer's doing: a 'protocol' failure. A stream destroyed under us is 'closed'; its other errors pass through. */
function asProtocol(error: unknown, peer: Side): unknown {
  if ((error as NodeJS.ErrnoException)?.code === 'ERR_STREAM_PREMATURE_CLOSE') {
    return new TransferError('closed', `the connection to the ${peer} closed before the transfer ended${peer === 'sender' ? '; what arrived is kept: send again to resume' : ''}`, { cause: error });
  }
  if (error instanceof TransferDecodeError && error.tooLarge) {
    return new TransferError('limit', `the ${peer} sent a message larger than this side takes (${error.message}); send fewer files at a time`, { cause: error });
  }
  if (NatpunchError.is(error) && error.code === 'ERR_TRANSFER_DECODE') {
    return new TransferError('protocol', `the ${peer} sent a malformed message (${error.message})`, { cause: error });
  }
  return error;
}
