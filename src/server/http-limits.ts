/**
 * Limits of the HTTP listeners (`natpunch serve`'s rendezvous WebSocket, /healthz, /metrics):
 * node:http's defaults let silent connections sit for a minute or more, with no bound on how
 * many, so enough of them use up the process's file descriptors and STUN/TCP and the
 * rendezvous fail with them. Why each default: docs/decisions/014-server-limits.md.
 */
import type http from 'node:http';
import type net from 'node:net';
import { ConnectionSlots } from '../connection-slots.js';
import { withDefaults } from '../options.js';

/** Limits on the HTTP listeners (the rendezvous WebSocket, /healthz, /metrics): decision 014. */
export interface HttpLimits {
  /**
   * A connection must send a whole request head (a WebSocket upgrade included) within this long
   * of connecting, and each later request on it within this long of its first byte, ms
   * (default 10 000). Counted from the connection, so sending one byte at a time does not help.
   */
  headersTimeoutMs?: number;
  /** A whole request, body included, ms (default 30 000). */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this long, ms (default 5 000, node's own). */
  keepAliveTimeoutMs?: number;
  /**
   * Connections in all (default 10 000). When full, the stalest connection that has not become a
   * WebSocket gives way; with none to evict, the new one is closed at once.
   */
  maxConnections?: number;
  /** Connections from one IP address (default 256: many peers may share a carrier-grade NAT's address). */
  maxConnectionsPerAddress?: number;
}

export const HTTP_LIMIT_DEFAULTS: Required<HttpLimits> = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 10_000,
  maxConnectionsPerAddress: 256,
};

/** Counters of the HTTP limits (`NatpunchServer#httpStats`). */
export interface HttpLimitStats {
  /** Connections open now. */
  connections: number;
  /** Closed at once: over the per-address cap, or full with nothing to evict. */
  refused: number;
  /** Closed to make room for a new connection. */
  evicted: number;
  /** Closed because no whole request head arrived within headersTimeoutMs. */
  headerTimeouts: number;
}

/**
 * One set of slots and counters for every HTTP listener of a server (`--address` given more
 * than once): the caps hold for the process, which is what runs out of descriptors.
 */
export class HttpConnectionLimiter {
  readonly stats: HttpLimitStats = { connections: 0, refused: 0, evicted: 0, headerTimeouts: 0 };
  readonly limits: Required<HttpLimits>;
  readonly #slots: ConnectionSlots<net.Socket>;

  constructor(limits: HttpLimits = {}) {
    this.limits = withDefaults(HTTP_LIMIT_DEFAULTS, limits);
    this.#slots = new ConnectionSlots({ max: this.limits.maxConnections, maxPerAddress: this.limits.maxConnectionsPerAddress });
  }

  /** Puts the limits on `server` (before it listens). */
  apply(server: http.Server): void {
    const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs } = this.limits;
    // node:http's own deadlines, for the requests after the first on a keep-alive connection. It
    // checks them only every connectionsCheckingInterval (30 s by default), and only once a
    // request has begun, hence the timer per connection below as well.
    server.headersTimeout = headersTimeoutMs;
    server.requestTimeout = Math.max(requestTimeoutMs, headersTimeoutMs);
    server.keepAliveTimeout = keepAliveTimeoutMs;
    server.on('connection', (socket: net.Socket) => this.#onConnection(socket));
    // A request head arrived: the connection is no longer silent.
    server.on('request', (request: http.IncomingMessage) => this.#headersArrived(request.socket));
    server.on('upgrade', (request: http.IncomingMessage) => {
      const socket = request.socket;
      this.#headersArrived(socket);
      // Once every 'upgrade' listener has run: a WebSocket (the rendezvous wrote its 101) is a
      // registered peer's long-lived connection, not one to evict for a newcomer; an upgrade
      // that no listener answered (this listener makes a shared server's count look taken, so the
      // rendezvous leaves a wrong path to it) gets the 404 it would have had: the client is told
      // its URL is wrong, not that the connection broke.
      setImmediate(() => {
        if (socket.destroyed) return;
        if (socket.bytesWritten === 0 && socket.writableLength === 0) {
          socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n', () => socket.destroy());
          return;
        }
        this.#slots.setEvictable(socket, false);
      });
    });
  }

  readonly #deadlines = new WeakMap<net.Socket, NodeJS.Timeout>();

  #onConnection(socket: net.Socket): void {
    const admission = this.#slots.admit(socket, socket.remoteAddress ?? '');
    if (admission === 'over-address-cap' || admission === 'full') {
      this.stats.refused++;
      socket.destroy();
      return;
    }
    if (admission === 'evicted') this.stats.evicted++;
    this.stats.connections = this.#slots.size;
    const deadline = setTimeout(() => {
      this.stats.headerTimeouts++;
      socket.destroy();
    }, this.limits.headersTimeoutMs);
    deadline.unref();
    this.#deadlines.set(socket, deadline);
    socket.once('close', () => {
      clearTimeout(deadline);
      this.#slots.release(socket);
      this.stats.connections = this.#slots.size;
    });
  }

  #headersArrived(socket: net.Socket): void {
    clearTimeout(this.#deadlines.get(socket));
    this.#slots.progress(socket);
  }
}
