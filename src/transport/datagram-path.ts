/**
 * What the stream runs over: one bidirectional datagram path to the peer. The caller provides
 * it: a punched UDP 5-tuple, a TURN relay channel, an in-process link in tests; when it is
 * encrypted, the datagram cipher sits inside `send` and in front of the handler.
 *
 * The stream never assumes a socket: it only sends datagrams of at most `maxPayload` bytes and
 * receives datagrams handed to its handler. Delivery may lose, duplicate and reorder.
 */
export interface DatagramPath {
  /** Bytes per datagram the stream may use (e.g. 1200, RFC 9000 §14's safe minimum). */
  readonly maxPayload: number;
  /** Fire-and-forget. May throw if the path is closed; the stream then aborts. */
  send(datagram: Uint8Array): void;
  /** Registers the receiver of datagrams for this stream. Called once per path. */
  onDatagram(handler: (datagram: Uint8Array) => void): void;
  /** Releases the path; the stream calls it only when created with `closePath: true`. */
  close?(): void;
}
