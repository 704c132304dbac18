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
  /**
   * Optional zero-copy framing for paths that put their own header in front of each datagram
   * (a connection id, a TURN ChannelData header): the stream then allocates `headroom` spare
   * bytes in front of each packet it encodes and hands the whole buffer to `sendWithHeadroom`,
   * which writes its header there and sends, instead of `send` copying the datagram behind it.
   */
  readonly headroom?: number;
  /** With `headroom`: `buffer` is `headroom` bytes for the path, then the datagram. Same contract as `send`. */
  sendWithHeadroom?(buffer: Uint8Array): void;
  /**
   * Optional: sends a burst at once, in order (e.g. one sendmmsg(2) with UDP GSO instead of a
   * system call per datagram). Each buffer is laid out as the stream would pass it singly: with
   * `headroom` spare bytes first when the path has `sendWithHeadroom`, else the bare datagram.
   * The path owns the array and the buffers once called. Same contract as `send`.
   */
  sendBatch?(buffers: Uint8Array[]): void;
  /** Registers the receiver of datagrams for this stream. Called once per path. */
  onDatagram(handler: (datagram: Uint8Array) => void): void;
  /** Releases the path; the stream calls it only when created with `closePath: true`. */
  close?(): void;
}
