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
 */
import { WebSocket, type RawData } from 'ws';

/** What the server does with a socket's events; one object shared by every socket. */
export interface SocketEvents<T> {
  message(owner: T, data: RawData, isBinary: boolean): void;
  close(owner: T): void;
  pong(owner: T): void;
  error(owner: T, error: Error): void;
}

export class ServerSocket<T> extends WebSocket {
  #owner: T | undefined = undefined;
  #events: SocketEvents<T> | undefined = undefined;

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
