/**
 * Errors raised by the stream transport. All are NatpunchErrors with a stable `code` (STYLE §5).
 */
import { NatpunchError } from '../errors.js';

/** A stream packet could not be decoded; `offset` is where in the datagram, if known. */
export class StreamDecodeError extends NatpunchError {
  override readonly name = 'StreamDecodeError';
  override readonly code = 'ERR_TRANSPORT_DECODE';
  readonly offset: number | undefined;
  constructor(message: string, offset?: number) {
    super('ERR_TRANSPORT_DECODE', message);
    this.offset = offset;
  }
}

/** The peer aborted the stream with a RESET packet (the analogue of TCP's RST). */
export class StreamResetError extends NatpunchError {
  /** Always `'StreamResetError'`. */
  override readonly name = 'StreamResetError';
  override readonly code = 'ERR_TRANSPORT_RESET';
  /** The application code the peer put in its RESET packet (0 when it gave none). */
  readonly resetCode: number;
  constructor(resetCode: number) {
    super('ERR_TRANSPORT_RESET', `stream: the peer reset the stream (code ${resetCode})`);
    this.resetCode = resetCode;
  }
}

/**
 * The peer aborted the stream on purpose (a RESET with code Aborted: its user pressed Ctrl-C, or
 * its program called connection.abort()). What arrived before it is all there is: the data is
 * incomplete.
 */
export class PeerAbortedError extends NatpunchError {
  /** Always `'PeerAbortedError'`. */
  override readonly name = 'PeerAbortedError';
  override readonly code = 'ERR_PEER_ABORTED';
  constructor(message = 'the peer aborted the connection; what was received before it is incomplete') {
    super('ERR_PEER_ABORTED', message);
  }
}

/** Nothing was heard from the peer for `idleTimeout` ms. */
export class StreamTimeoutError extends NatpunchError {
  /** Always `'StreamTimeoutError'`. */
  override readonly name = 'StreamTimeoutError';
  override readonly code = 'ERR_TRANSPORT_TIMEOUT';
  constructor(message: string) {
    super('ERR_TRANSPORT_TIMEOUT', message);
  }
}

/** Misuse of the transport API (bad option, path too small for a packet). */
export class TransportError extends NatpunchError {
  override readonly name = 'TransportError';
  override readonly code = 'ERR_TRANSPORT';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_TRANSPORT', message, options);
  }
}
