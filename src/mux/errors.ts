/**
 * Errors of the stream multiplexer. Both are NatpunchErrors with a stable `code` (STYLE §5).
 */
import { NatpunchError } from '../errors.js';
import { muxErrorName, MuxErrorCode } from './frame-type.js';

/**
 * The session failed: a frame broke the protocol (either side), the connection below ended, or
 * the peer sent GO_AWAY with an error. `muxCode` is the MuxErrorCode sent or received.
 */
export class MuxError extends NatpunchError {
  /** Always `'MuxError'`. */
  override readonly name = 'MuxError';
  /** Always `'ERR_MUX'`. */
  override readonly code = 'ERR_MUX';
  /** The {@link MuxErrorCode} sent or received in GO_AWAY. */
  readonly muxCode: number;
  constructor(muxCode: number, message: string, options?: { cause?: unknown }) {
    super('ERR_MUX', message, options);
    this.muxCode = muxCode;
  }
}

/** A frame broke the protocol: the session is reset with PROTOCOL_ERROR (or a more precise code). */
export function protocolError(message: string, muxCode: number = MuxErrorCode.ProtocolError): MuxError {
  return new MuxError(muxCode, `mux: ${message}`);
}

/** The peer reset one stream (RESET): `reason` names its code ('connect-refused', 'cancel', ...). */
export class MuxStreamResetError extends NatpunchError {
  /** Always `'MuxStreamResetError'`. */
  override readonly name = 'MuxStreamResetError';
  /** Always `'ERR_MUX_RESET'`. */
  override readonly code = 'ERR_MUX_RESET';
  /** The {@link MuxErrorCode} the RESET carried. */
  readonly muxCode: number;
  /** That code's name: `'connect-refused'`, `'cancel'`, …. */
  readonly reason: string;
  /** The peer's own words, if it gave any. */
  readonly detail: string;
  constructor(muxCode: number, detail: string) {
    super('ERR_MUX_RESET', `the peer reset the stream (${muxErrorName(muxCode)})${detail ? `: ${detail}` : ''}`);
    this.muxCode = muxCode;
    this.reason = muxErrorName(muxCode);
    this.detail = detail;
  }
}
