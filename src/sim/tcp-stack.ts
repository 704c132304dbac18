/**
 * A sim host's TCP, as Linux's behaves where natpunch can tell: which sockets may share a local
 * port, which socket a segment is for, and the RST a segment for nobody gets.
 *
 * - Ports: libuv sets SO_REUSEADDR on every TCP socket before bind (ARCHITECTURE.md), so
 *   sockets that do not listen may share a local port (the kept STUN connection and the punching
 *   connects from L); a listening socket shares its port with none (bind next to it, or listen
 *   beside others, fails EADDRINUSE, as NATLAB-FACTS saw). Two connections may not share a
 *   4-tuple (connect fails EADDRNOTAVAIL).
 * - Demultiplexing: the connection with the segment's 4-tuple, else a listener on its port for
 *   a SYN, else a RST (RFC 9293 §3.10.7.1: a segment for a CLOSED port is answered with a reset;
 *   a reset is never answered).
 *
 * @see RFC 9293 §3.10.7 (SEGMENT ARRIVES)
 */
import { SimError } from '../errors.js';
import type { Endpoint } from './nat.js';
import { endpointKey } from './nat.js';
import type { Datagram, Host } from './network.js';
import { EPHEMERAL_PORTS } from './network.js';
import type { Prng } from './prng.js';
import { DEFAULT_TTL, type TcpHeader, resetFor } from './tcp-segment.js';

/** What the stack needs of a socket or server holding a port. */
interface Binding {
  address: string;
  listening: boolean;
}

/** A connection the stack delivers segments to (SimTcpSocket). */
export interface TcpEndpoint {
  segment(d: Datagram): void;
}

/** A listener the stack hands SYNs to (SimTcpServer). */
export interface TcpAcceptor {
  syn(d: Datagram): void;
}

export class TcpStack {
  readonly host: Host;
  readonly #prng: Prng;
  /** Port -> who holds it. */
  readonly #ports = new Map<number, Map<object, Binding>>();
  /** "local>remote" -> connection (connecting, connected, or lingering after close). */
  readonly #connections = new Map<string, TcpEndpoint>();
  /** "address:port" -> listener. */
  readonly #listeners = new Map<string, TcpAcceptor>();

  /** @internal Made by Host. */
  constructor(host: Host, prng: Prng) {
    this.host = host;
    this.#prng = prng;
  }

  /** The address a socket bound to 0.0.0.0 sends from (the host's first). */
  sourceAddress(bound: string): string {
    return bound === '0.0.0.0' ? this.host.addresses[0]! : bound;
  }

  /** A random initial sequence number (RFC 9293 §3.4.1), from the host's seeded stream. */
  initialSequence(): number {
    return Math.floor(this.#prng.next() * 0x1_0000_0000) >>> 0;
  }

  /**
   * Claims `address:port` for `owner` (port 0: an ephemeral one). Throws EADDRINUSE or
   * EADDRNOTAVAIL shaped as Node reports them for `syscall`.
   */
  bind(owner: object, address: string, port: number, options: { listening: boolean; syscall: string }): Endpoint {
    if (address !== '0.0.0.0' && !this.host.addresses.includes(address)) {
      throw errnoError('EADDRNOTAVAIL', -99, options.syscall, address, port, ` (host ${this.host.name} has ${this.host.addresses.join(', ')})`);
    }
    if (port === 0) port = this.#ephemeralPort();
    else if (this.#conflicts(address, port, options.listening)) throw errnoError('EADDRINUSE', -98, options.syscall, address, port);
    let holders = this.#ports.get(port);
    if (holders === undefined) this.#ports.set(port, holders = new Map());
    holders.set(owner, { address, listening: options.listening });
    return { address, port };
  }

  unbind(owner: object, port: number): void {
    const holders = this.#ports.get(port);
    holders?.delete(owner);
    if (holders?.size === 0) this.#ports.delete(port);
  }

  /** Registers a connection's 4-tuple; throws EADDRNOTAVAIL when another connection has it. */
  connect(connection: TcpEndpoint, local: Endpoint, remote: Endpoint): void {
    const key = tupleKey(local, remote);
    if (this.#connections.has(key)) throw errnoError('EADDRNOTAVAIL', -99, 'connect', remote.address, remote.port);
    this.#connections.set(key, connection);
  }

  disconnect(connection: TcpEndpoint, local: Endpoint, remote: Endpoint): void {
    const key = tupleKey(local, remote);
    if (this.#connections.get(key) === connection) this.#connections.delete(key);
  }

  listen(acceptor: TcpAcceptor, local: Endpoint): void {
    this.#listeners.set(endpointKey(local), acceptor);
  }

  unlisten(acceptor: TcpAcceptor, local: Endpoint): void {
    if (this.#listeners.get(endpointKey(local)) === acceptor) this.#listeners.delete(endpointKey(local));
  }

  /** Sends one segment from `local` (a concrete address) to `remote`. */
  send(local: Endpoint, remote: Endpoint, header: TcpHeader, payload: Buffer = Buffer.alloc(0), ttl = DEFAULT_TTL): void {
    this.host.transmit({ src: { ...local }, dst: { ...remote }, payload, tcp: header, ttl });
  }

  /** @internal A segment for this host. */
  receive(d: Datagram): void {
    const connection = this.#connections.get(tupleKey(d.dst, d.src));
    if (connection !== undefined) {
      this.host.network.emit(this.host.name, 'deliver', d);
      connection.segment(d);
      return;
    }
    const h = d.tcp!;
    const listener = h.syn && !h.ack ? this.#listeners.get(endpointKey(d.dst)) ?? this.#listeners.get(`0.0.0.0:${d.dst.port}`) : undefined;
    if (listener !== undefined) {
      this.host.network.emit(this.host.name, 'deliver', d);
      listener.syn(d);
      return;
    }
    this.host.network.emit(this.host.name, 'drop', d, 'no-socket');
    const reset = resetFor(h, d.payload.length);
    if (reset) this.send(d.dst, d.src, reset);
  }

  #conflicts(address: string, port: number, listening: boolean): boolean {
    for (const holder of this.#ports.get(port)?.values() ?? []) {
      const overlaps = address === '0.0.0.0' || holder.address === '0.0.0.0' || holder.address === address;
      if (overlaps && (listening || holder.listening)) return true;
    }
    return false;
  }

  #ephemeralPort(): number {
    for (let i = 0; i < 10_000; i++) {
      const port = this.#prng.int(EPHEMERAL_PORTS.min, EPHEMERAL_PORTS.max);
      if (!this.#ports.has(port)) return port;
    }
    throw new SimError(`host ${this.host.name}: no free ephemeral TCP port`);
  }
}

function tupleKey(local: Endpoint, remote: Endpoint): string {
  return `${endpointKey(local)}>${endpointKey(remote)}`;
}

/** An error shaped as Node's for a failed socket call: `connect ECONNREFUSED 203.0.113.20:40000`. */
export function errnoError(code: string, errno: number, syscall: string, address: string, port: number, detail = ''): NodeJS.ErrnoException {
  return Object.assign(new Error(`${syscall} ${code} ${address}:${port}${detail}`), { code, errno, syscall, address, port });
}
