/**
 * The WebSocket class the rendezvous server's WebSocketServer makes (ws's `WebSocket` option):
 * a socket that carries its owner (the server's record of the connection) and hands its events
 * straight to one shared set of handlers, instead of through per-socket listeners.
 *
 * Why: memory per registered peer. An EventEmitter keeps its listeners in a null-prototype
 * object that V8 holds in dictionary mode; with the four listeners the server needs it took
 * 256 B per socket (heap snapshot, 6,000 registered peers), empty it takes 160 B. Without the
 * listeners and the symbol-keyed property that pointed back to the connection, a registered
 * peer's V8 heap is ~85 B smaller (3.73 -> 3.64 KiB, bench rendezvous). Anything else may still
 * listen (`once('close', ...)` at shutdown) and gets the event after the owner's handler.
 *
 * For the same reason it drops, as it is made, three things each socket would otherwise keep
 * (heap snapshot, 10,000 registered peers): the empty listener object (204 B), an empty
 * extensions object of its own (55 B), and the closure ws's autoPong keeps per socket (110 B);
 * the owner answers pings instead (the server runs ws with `autoPong: false`).
 */
import { WebSocket, type RawData } from 'ws';

/** What the server does with a socket's events; one object shared by every socket. */
export interface SocketEvents<T> {
  message(owner: T, data: RawData, isBinary: boolean): void;
  close(owner: T): void;
  /** A ping from the peer, to be answered with a pong carrying `data` (RFC 6455 §5.5.2). */
  ping(owner: T, data: Buffer): void;
  pong(owner: T): void;
  error(owner: T, error: Error): void;
}

/** The extensions of every socket: none (the server turns permessage-deflate off), never written to. */
const NO_EXTENSIONS = Object.freeze({});

export class ServerSocket<T> extends WebSocket {
  #owner: T | undefined = undefined;
  #events: SocketEvents<T> | undefined = undefined;

  // ws's WebSocketServer makes each socket with `new WebSocket(null, undefined, options)`.
  constructor(...args: unknown[]) {
    super(...(args as ConstructorParameters<typeof WebSocket>));
    // EventEmitter's constructor gave this socket an empty null-prototype listener object, which V8
    // holds in dictionary mode, for listeners it does not need. EventEmitter makes one again on
    // the first on() or once(), and its other methods take undefined (Node's lib/events.js).
    (this as unknown as { _events: undefined })._events = undefined;
    // ws's constructor gave it an empty extensions object of its own, which its Receiver and
    // Sender will share. On the server side ws only ever replaces it (with a negotiated
    // permessage-deflate, which this server turns off) and never writes into it.
    (this as unknown as { _extensions: object })._extensions = NO_EXTENSIONS;
  }

  /** From now on this socket's message, close, pong and error events go to `events` with `owner`. */
  attach(owner: T, events: SocketEvents<T>): void {
    this.#owner = owner;
    this.#events = events;
  }

  get owner(): T | undefined {
    return this.#owner;
  }

  // ws emits these on the socket itself (lib/websocket.js); no other path carries them.
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    const owner = this.#owner;
    const events = this.#events;
    if (owner !== undefined && events !== undefined) {
      switch (event) {
        case 'message': events.message(owner, args[0] as RawData, args[1] as boolean); break;
        case 'close': events.close(owner); break;
        case 'ping': events.ping(owner, args[0] as Buffer); break;
        case 'pong': events.pong(owner); break;
        case 'error':
          events.error(owner, args[0] as Error);
          // Handled: an EventEmitter with no 'error' listener would throw it.
          return this.listenerCount('error') > 0 ? super.emit(event, ...args) : true;
      }
    }
    return super.emit(event, ...args);
  }
}
