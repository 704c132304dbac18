/**
 * `for await (const chunk of stream)` for a half-closable Duplex (a natpunch connection, a mux
 * stream). Node's own iterator destroys the stream once the loop is over, even when the loop
 * simply reached the peer's end: on a connection that still has a direction to write (read the
 * request, then answer) that destroy is an abort, and the peer would see ERR_PEER_ABORTED instead
 * of the answer. A TCP socket closed after its peer's FIN still ends gracefully; so do ours.
 *
 * Here the peer's end finishes the loop and leaves the stream open for writing (it closes
 * itself once both directions have ended, as always); leaving the loop early (`break`, `return`,
 * a throw in its body) still destroys it, as Node's iterator does, since nobody reads any more.
 */
import type { Duplex } from 'node:stream';

export async function* halfCloseIterator(stream: Duplex): AsyncGenerator<Buffer, void, undefined> {
  let ended = false;
  try {
    for await (const chunk of stream.iterator({ destroyOnReturn: false })) yield chunk as Buffer;
    ended = true;
  } finally {
    if (!ended && !stream.destroyed) stream.destroy();
  }
}
