/**
 * A local TCP connection joined to a mux stream, both ways, as ssh -L joins a socket to a
 * channel: bytes flow with backpressure (pipe), a FIN either way is passed on as a FIN (TCP
 * half-close, the stream's FIN), and an abort either way is passed on as an abort: an error on
 * the socket resets the stream, a reset stream resets the socket (RST, so the local program
 * sees a failure, not a clean end).
 */
import type { Socket } from 'node:net';
import { MuxErrorCode, type MuxStream } from '../mux/index.js';

export function joinSocketAndStream(socket: Socket, stream: MuxStream): void {
  // What arrives is passed on at once, as ssh does for its channels: Nagle's algorithm on the
  // local leg would hold an interactive program's small writes for an ACK (RFC 896).
  socket.setNoDelay(true);
  socket.pipe(stream);
  stream.pipe(socket);
  socket.on('error', (error: Error) => stream.reset(MuxErrorCode.ConnectionError, `the TCP connection failed: ${error.message}`));
  stream.on('error', () => { if (!socket.destroyed) socket.resetAndDestroy(); });
}
