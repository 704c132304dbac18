import { Duplex } from 'node:stream';
import { NatpunchError, AbortedError } from '../errors.js';
import type { Identity } from '../identity/index.js';
import { NatpunchHandshake, encodeFrame, FrameDecoder, MAX_PLAINTEXT_LENGTH, sealFrame, type SecureSession } from '../secure/index.js';

const CLOSE_MESSAGE = new Uint8Array(0);

export interface SecureStreamOptions {
  identity: Identity;
  initiator: boolean;
  /** The peer we mean to reach (required for the initiator). */
  expectedPeerId?: string;
  /** Session context bound into the handshake (the rendezvous session id). */
  context?: Uint8Array;
  signal?: AbortSignal;
  /** Give up on a handshake that stalls (default 15 s). */
  timeoutMs?: number;
}

/**
 * An end-to-end encrypted, mutually authenticated byte stream over any reliable Duplex (natpunch's
 * UDP stream, or a punched TCP connection): the Noise XX handshake first, then every write is
 * sealed into length-prefixed Noise transport messages. Whatever carries the bytes — a relay,
 * the rendezvous server — sees only ciphertext.
 */
export class SecureStream extends Duplex {
  readonly remotePeerId: string;
  readonly session: SecureSession;
  readonly #raw: Duplex;
  readonly #decoder: FrameDecoder;
  #rawEnded = false;
  /** The peer's close message arrived: its direction ended here, authenticated. */
  #closeReceived = false;

  private constructor(raw: Duplex, session: SecureSession, decoder: FrameDecoder, leftovers: Uint8Array[], rawEnded: boolean) {
    super({ allowHalfOpen: true });
    this.#raw = raw;
    this.session = session;
    this.remotePeerId = session.remotePeerId;
    this.#decoder = decoder;
    for (const message of leftovers) this.#deliver(message);
    // The peer may finish its half of the handshake, write nothing and end at once (`connect`
    // with an empty stdin): its FIN then arrives with the last handshake message, and the
    // carrier's 'end' has already been emitted by the time this stream exists.
    if (rawEnded) this.#onRawEnd();
    raw.on('data', (chunk: Buffer) => {
      let messages: Uint8Array[];
      try {
        messages = this.#decoder.push(chunk);
      } catch (error) {
        this.destroy(error as Error);
        return;
      }
      for (const message of messages) if (!this.#deliver(message)) raw.pause();
    });
    raw.on('end', () => this.#onRawEnd());
    raw.on('error', (error) => this.destroy(error));
    raw.on('close', () => { if (!this.#rawEnded) this.destroy(new NatpunchError('ERR_TRANSPORT', 'the underlying stream closed before it ended')); });
  }

  /** Run the handshake over `raw` and resolve with the secure stream, or reject with a NoiseError. */
  static async establish(raw: Duplex, options: SecureStreamOptions): Promise<SecureStream> {
    const handshake = new NatpunchHandshake({ identity: options.identity, initiator: options.initiator, expectedPeerId: options.expectedPeerId, prologue: options.context });
    const decoder = new FrameDecoder();
    const inbox: Uint8Array[] = [];
    let wake: (() => void) | undefined;
    let failure: Error | undefined;
    let ended = false;
    const onData = (chunk: Buffer): void => {
      try {
        inbox.push(...decoder.push(chunk));
      } catch (error) {
        failure = error as Error;
      }
      wake?.();
    };
    // An end is a failure only if the handshake still needs a message that did not come before it.
    const onEnd = (): void => { ended = true; wake?.(); };
    const closedMidHandshake = (): Error => new NatpunchError('ERR_NOISE', 'handshake: the peer closed the stream mid-handshake');
    const onError = (): void => { failure ??= closedMidHandshake(); wake?.(); };
    const onAbort = (): void => { failure ??= new AbortedError('handshake aborted'); wake?.(); };
    const timer = setTimeout(() => { failure ??= new NatpunchError('ERR_NOISE', `handshake: no progress in ${options.timeoutMs ?? 15_000} ms`); wake?.(); }, options.timeoutMs ?? 15_000);
    raw.on('data', onData);
    raw.on('end', onEnd);
    raw.on('error', onError);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      while (!handshake.complete) {
        const out = handshake.write();
        if (out) {
          raw.write(encodeFrame(out));
          continue;
        }
        while (inbox.length === 0 && !failure && !ended) await new Promise<void>((resolve) => { wake = resolve; });
        if (failure) throw failure;
        if (inbox.length === 0) throw closedMidHandshake();
        handshake.read(inbox.shift()!);
      }
    } finally {
      clearTimeout(timer);
      raw.off('data', onData);
      raw.off('end', onEnd);
      raw.off('error', onError);
      options.signal?.removeEventListener('abort', onAbort);
    }
    const session = handshake.session();
    // The natpunch stream transport (src/transport) can now refuse RESETs not sent by the peer.
    const carrier = raw as Duplex & { authenticateResets?: (tokens: SecureSession['resetTokens']) => void };
    if (typeof carrier.authenticateResets === 'function') carrier.authenticateResets(session.resetTokens);
    return new SecureStream(raw, session, decoder, inbox, ended);
  }

  #deliver(ciphertext: Uint8Array): boolean {
    let plaintext: Uint8Array;
    try {
      plaintext = this.session.decrypt(ciphertext);
    } catch (error) {
      this.destroy(error as Error);
      return false;
    }
    if (this.#closeReceived) {
      this.destroy(new NatpunchError('ERR_NOISE', 'secure stream: a message after the peer\'s close message'));
      return false;
    }
    if (plaintext.length === 0) {
      // Writes never make an empty message, so this is the close message (see _final).
      this.#closeReceived = true;
      return true;
    }
    return this.push(plaintext);
  }

  /**
   * The carrier's end (a FIN) is not authenticated: anyone on the path could forge one at a
   * frame boundary and cut the stream short without either side noticing. So the end counts only
   * after the peer's sealed close message, as TLS requires close_notify (@see RFC 8446 §6.1).
   */
  #onRawEnd(): void {
    this.#rawEnded = true;
    if (!this.#closeReceived || this.#decoder.buffered > 0) {
      this.destroy(new NatpunchError('ERR_NOISE', 'secure stream: the peer\'s stream ended without its sealed close message (truncated on the way)'));
      return;
    }
    this.push(null);
  }

  override _read(): void {
    this.#raw.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#seal(chunk, callback);
  }

  /** Writes queued while the carrier was busy go out together, in as few frames as fit. */
  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.#seal(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), callback);
  }

  /**
   * Seals `data` into frames of equal size, as few as MAX_PLAINTEXT_LENGTH allows: an AEAD call
   * costs several microseconds whatever its length, so a 64 KiB write becomes two halves, not a
   * full frame and a 17-byte one.
   */
  #seal(data: Uint8Array, callback: (error?: Error | null) => void): void {
    let ok = true;
    try {
      const frames = Math.ceil(data.length / MAX_PLAINTEXT_LENGTH);
      const size = Math.ceil(data.length / frames);
      for (let offset = 0; offset < data.length; offset += size) {
        ok = this.#raw.write(sealFrame(this.session, data.subarray(offset, offset + size)));
      }
    } catch (error) {
      callback(error as Error);
      return;
    }
    if (ok) callback();
    else this.#raw.once('drain', () => callback());
  }

  /** Our sealed close message (an empty Noise message), then the carrier's end. */
  override _final(callback: (error?: Error | null) => void): void {
    try {
      this.#raw.write(sealFrame(this.session, CLOSE_MESSAGE));
    } catch (error) {
      callback(error as Error);
      return;
    }
    this.#raw.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // destroy() without an error after end() — what `for await` does once the peer's data has
    // ended — must not abort bytes of ours still in flight: let the carrier deliver its FIN
    // first, the way closing a TCP socket after end() still sends what is queued.
    if (error === null && this.#raw.writableEnded && !this.#raw.writableFinished && !this.#raw.destroyed) {
      const release = (): void => { this.#raw.destroy(); };
      this.#raw.once('finish', release);
      this.#raw.once('error', release);
      callback(null);
      return;
    }
    this.#raw.destroy(error ?? undefined);
    callback(error);
  }
}
