/**
 * Frame types and error codes of natpunch's stream multiplexer (docs/decisions/012-multiplexing.md).
 * The shape follows HTTP/2 (RFC 9113 §4.1, §6) and yamux, reduced to what forwarding needs.
 */

export enum FrameType {
  /** Opens stream `id`; payload: the target (UTF-8), what the stream is for. @see RFC 9113 §6.2 */
  Open = 0x0,
  /** Bytes of stream `id`, at most the window the receiver granted. @see RFC 9113 §6.1 */
  Data = 0x1,
  /** Grants the sender of stream `id` more window; payload: increment (u32, > 0). @see RFC 9113 §6.9 */
  WindowUpdate = 0x2,
  /** The sender will send no more on stream `id` (half-close). @see RFC 9113 §8.1 END_STREAM */
  Fin = 0x3,
  /** Aborts stream `id`; payload: error code (u32) and a reason (UTF-8). @see RFC 9113 §6.4 */
  Reset = 0x4,
  /** Ends the session (stream id 0); payload: last stream id accepted (u32), error code (u32), reason. @see RFC 9113 §6.8 */
  GoAway = 0x5,
}

export const frameTypeNames: Record<FrameType, string> = {
  [FrameType.Open]: 'OPEN',
  [FrameType.Data]: 'DATA',
  [FrameType.WindowUpdate]: 'WINDOW_UPDATE',
  [FrameType.Fin]: 'FIN',
  [FrameType.Reset]: 'RESET',
  [FrameType.GoAway]: 'GO_AWAY',
};

/** Error codes of RESET and GO_AWAY: RFC 9113 §7's values, then natpunch's own from 0x100. */
export enum MuxErrorCode {
  /** A clean end: GO_AWAY on close, RESET without a failure. */
  NoError = 0x0,
  /** The peer broke the framing protocol (unknown frame, stream never opened, …). */
  ProtocolError = 0x1,
  /** This side failed (the connection below errored). */
  InternalError = 0x2,
  /** DATA beyond the granted window, or a window past 2^31-1 (RFC 9113 §6.9.1). */
  FlowControlError = 0x3,
  /** A frame for a stream already closed that way (DATA after FIN, a second FIN). */
  StreamClosed = 0x5,
  /** A frame whose size is out of bounds. */
  FrameSizeError = 0x6,
  /** The stream was refused before any data: too many open, or the session is going away. */
  RefusedStream = 0x7,
  /** The stream is no longer wanted (`stream.destroy()` or `reset()` without a code). */
  Cancel = 0x8,
  /** The exposing side's connect to its service was refused (ECONNREFUSED). */
  ConnectRefused = 0x100,
  /** The exposing side could not reach its service otherwise (unreachable, timeout, DNS). */
  ConnectFailed = 0x101,
  /** The service's TCP connection failed after it was established. */
  ConnectionError = 0x102,
}

/** Names for messages and for the `reason` of MuxStreamResetError (kebab-case, stable). */
export const muxErrorNames: Record<number, string> = {
  [MuxErrorCode.NoError]: 'no-error',
  [MuxErrorCode.ProtocolError]: 'protocol-error',
  [MuxErrorCode.InternalError]: 'internal-error',
  [MuxErrorCode.FlowControlError]: 'flow-control-error',
  [MuxErrorCode.StreamClosed]: 'stream-closed',
  [MuxErrorCode.FrameSizeError]: 'frame-size-error',
  [MuxErrorCode.RefusedStream]: 'refused-stream',
  [MuxErrorCode.Cancel]: 'cancel',
  [MuxErrorCode.ConnectRefused]: 'connect-refused',
  [MuxErrorCode.ConnectFailed]: 'connect-failed',
  [MuxErrorCode.ConnectionError]: 'connection-error',
};

export function muxErrorName(code: number): string {
  return muxErrorNames[code] ?? `code-0x${code.toString(16)}`;
}
