/**
 * TCP sockets and servers on a sim host, with the part of node:net's `Socket` and `Server` that
 * natpunch's TCP code uses (STUN over TCP, TCP punching, connection reversal, dial-back): a
 * Duplex stream with 'connect', 'data'/'readable', 'end', 'close', 'error' and 'timeout',
 * setTimeout, remote/local address and readyState; a server with listen, address, close and
 * 'connection'. As node:net does: every outcome is asynchronous, errors carry `code`, `errno`
 * and `syscall` (ECONNREFUSED, ECONNRESET, ETIMEDOUT, EADDRINUSE, EADDRNOTAVAIL), writes made
 * while connecting wait for the connection, and with allowHalfOpen false a FIN from the peer
 * ends our side too.
 *
 * The connection follows RFC 9293 §3.5: SYN, SYN-ACK, ACK; a SYN received in SYN-SENT is a
 * simultaneous open (figure 8: both sides go to SYN-RECEIVED and answer SYN-ACK); a RST whose ACK
 * acknowledges our SYN refuses the connect (ECONNREFUSED). SYN and SYN-ACK are retransmitted
 * after 1 s, doubling (RFC 6298 §2.1, §5.7), up to Linux's tcp_syn_retries (6) and
 * tcp_synack_retries (5); then ETIMEDOUT.
 *
 * Data and FIN are acknowledged segment by segment and retransmitted after an RTO (RFC 6298:
 * 3 × the handshake's round trip, at least Linux's 200 ms, doubling, up to tcp_retries2), all
 * that is unacknowledged at once; out-of-order segments wait for the gap.
 *
 * Simplified, and said so in docs/sim.md: no windows, MSS, SACK, fast retransmit or congestion
 * control (one write is one segment, sent at once); a closed connection lingers for TIME-WAIT's
 * 60 s (absorbing the peer's late segments, retransmitting what it still owes) instead of
 * walking the FIN states.
 */
import { Duplex } from 'node:stream';
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { SimError } from '../errors.js';
import type { TcpNet } from '../tcp-net.js';
import type { Endpoint } from './nat.js';
import type { Datagram, Host } from './network.js';
import { type TcpHeader, seqAdd, segmentLength } from './tcp-segment.js';
import { portArguments } from './socket.js';
import { type TcpAcceptor, type TcpEndpoint, type TcpStack, errnoError } from './tcp-stack.js';

/** RFC 6298 §2.1: the initial retransmission timeout, 1 s; doubled on each retransmission (§5.5). */
const INITIAL_RTO_MS = 1_000;
/** Linux defaults: net.ipv4.tcp_syn_retries and tcp_synack_retries. */
const SYN_RETRIES = 6;
const SYNACK_RETRIES = 5;
/** How long a closed connection absorbs its peer's late segments (Linux's TIME-WAIT, 60 s). */
const LINGER_MS = 60_000;
/** Linux's TCP_RTO_MIN and TCP_RTO_MAX, and net.ipv4.tcp_retries2 (data retransmissions before ETIMEDOUT). */
const MIN_RTO_MS = 200;
const MAX_RTO_MS = 120_000;
const DATA_RETRIES = 15;

type State = 'closed' | 'syn-sent' | 'syn-received' | 'established' | 'lingering';

export interface SimTcpSocketOptions {
  allowHalfOpen?: boolean;
}

export interface SimConnectOptions {
  host?: string;
  port: number;
  localAddress?: string;
  localPort?: number;
  /** IP TTL of the first SYN only (later ones, and every other segment, use the default): priming. */
  firstSynTtl?: number;
}

export class SimTcpSocket extends Duplex implements TcpEndpoint {
  readonly #stack: TcpStack;
  #state: State = 'closed';
  /** How this connection started: our connect (active) or a listener's SYN (passive). */
  #active = false;
  #bound: Endpoint | undefined;
  #local: Endpoint | undefined;
  #remote: Endpoint | undefined;
  #iss = 0;
  #sndNxt = 0;
  #rcvNxt = 0;
  #finSent = false;
  #handshakeTimer: unknown;
  #retransmissions = 0;
  readonly #outOfOrder = new Map<number, { payload: Buffer; fin: boolean }>();
  /** Writes (and the end) made before the connection is established. */
  readonly #waiting: Array<() => void> = [];
  #idleMs = 0;
  #idleTimer: unknown;
  /** For passive connections: told once the handshake completes. */
  #onEstablished: (() => void) | undefined;
  /** IP_MINTTL: segments that arrive with a lower TTL are ignored (a primed socket's quiet time: 255). */
  minTtl = 0;
  /** Sent and not yet acknowledged, oldest first: retransmitted after an RTO (RFC 6298 §5). */
  readonly #unacked: Array<{ seq: number; payload: Buffer; fin: boolean }> = [];
  #rtoMs = INITIAL_RTO_MS;
  #retransmitTimer: unknown;
  #dataRetries = 0;
  /** When the handshake's first SYN (or SYN-ACK) left, for the first RTT sample. */
  #handshakeAt = 0;

  constructor(stack: TcpStack, options: SimTcpSocketOptions = {}) {
    super({ allowHalfOpen: options.allowHalfOpen ?? false });
    this.#stack = stack;
  }

  get connecting(): boolean {
    return this.#active && (this.#state === 'closed' || this.#state === 'syn-sent' || this.#state === 'syn-received') && !this.destroyed;
  }

  get pending(): boolean {
    return this.#state !== 'established';
  }

  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.connecting) return 'opening';
    if (this.destroyed || this.#state !== 'established') return 'closed';
    if (this.readable && this.writable) return 'open';
    return this.readable ? 'readOnly' : this.writable ? 'writeOnly' : 'closed';
  }

  get remoteAddress(): string | undefined { return this.#state === 'established' || this.#state === 'lingering' ? this.#remote?.address : undefined; }
  get remotePort(): number | undefined { return this.#state === 'established' || this.#state === 'lingering' ? this.#remote?.port : undefined; }
  get remoteFamily(): string | undefined { return this.remoteAddress === undefined ? undefined : 'IPv4'; }
  get localAddress(): string | undefined { return this.#local?.address; }
  get localPort(): number | undefined { return this.#local?.port; }

  address(): net.AddressInfo | Record<string, never> {
    return this.#local ? { address: this.#local.address, family: 'IPv4', port: this.#local.port } : {};
  }

  /** net.Socket#connect(options) or connect(port, host?); the outcome comes as 'connect' or 'error'. */
  connect(...args: unknown[]): this {
    const callback = typeof args[args.length - 1] === 'function' ? args.pop() as () => void : undefined;
    const options: SimConnectOptions = typeof args[0] === 'object' && args[0] !== null
      ? args[0] as SimConnectOptions
      : { port: args[0] as number, host: typeof args[1] === 'string' ? args[1] : undefined };
    const address = options.host ?? '127.0.0.1';
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(address)) throw new SimError(`sim tcp: host ${JSON.stringify(address)} is not an IPv4 address (the sim has no DNS)`);
    if (!Number.isInteger(options.port) || options.port <= 0 || options.port > 65535) {
      throw Object.assign(new RangeError(`options.port should be >= 0 and < 65536. Received ${String(options.port)}.`), { code: 'ERR_SOCKET_BAD_PORT' });
    }
    if (callback) this.once('connect', callback);
    this.#active = true;
    // node:net looks the host up first: the SYN leaves on a later turn, never inside connect().
    process.nextTick(() => this.#open(options, address));
    return this;
  }

  #open(options: SimConnectOptions, address: string): void {
    if (this.destroyed) return;
    const remote = { address, port: options.port };
    try {
      this.#bound = this.#stack.bind(this, options.localAddress ?? '0.0.0.0', options.localPort ?? 0, { listening: false, syscall: 'bind' });
      const local = { address: this.#stack.sourceAddress(this.#bound.address), port: this.#bound.port };
      this.#stack.connect(this, local, remote);
      this.#local = local;
      this.#remote = remote;
    } catch (error) {
      this.destroy(error as Error);
      return;
    }
    this.#iss = this.#stack.initialSequence();
    this.#sndNxt = seqAdd(this.#iss, 1);
    this.#state = 'syn-sent';
    this.#send({ syn: true, seq: this.#iss, ackNumber: 0 }, undefined, options.firstSynTtl);
    this.#armHandshake(SYN_RETRIES);
  }

  /** @internal A listener's new connection: SYN received, SYN-ACK sent. */
  accepted(local: Endpoint, remote: Endpoint, syn: TcpHeader, onEstablished: () => void): void {
    this.#local = { ...local };
    this.#remote = { ...remote };
    this.#stack.connect(this, this.#local, this.#remote);
    this.#onEstablished = onEstablished;
    this.#iss = this.#stack.initialSequence();
    this.#sndNxt = seqAdd(this.#iss, 1);
    this.#rcvNxt = seqAdd(syn.seq, 1);
    this.#state = 'syn-received';
    this.#sendSynAck();
    this.#armHandshake(SYNACK_RETRIES);
  }

  /** @internal A segment on this connection's 4-tuple (RFC 9293 §3.10.7). */
  segment(d: Datagram): void {
    if ((d.ttl ?? 255) < this.minTtl) return;
    const h = d.tcp!;
    switch (this.#state) {
      case 'syn-sent': return this.#inSynSent(h);
      case 'syn-received': return this.#inSynReceived(h, d.payload);
      case 'established': return this.#inEstablished(h, d.payload);
      case 'lingering':
        // Absorbed, but what we still owe the peer (data, our FIN) is retransmitted until acknowledged.
        if (d.tcp!.ack) this.#acknowledged(d.tcp!.ackNumber);
        return;
      default: return;
    }
  }

  #inSynSent(h: TcpHeader): void {
    const acksOurSyn = h.ack === true && h.ackNumber === this.#sndNxt;
    if (h.rst) {
      // §3.10.7.3: a reset is acceptable in SYN-SENT only if it acknowledges our SYN.
      if (acksOurSyn) this.#fail('ECONNREFUSED', -111, 'connect');
      return;
    }
    if (!h.syn) return;
    this.#rcvNxt = seqAdd(h.seq, 1);
    if (acksOurSyn) {
      this.#send({ ack: true, seq: this.#sndNxt, ackNumber: this.#rcvNxt });
      this.#establish();
    } else if (!h.ack) {
      // Simultaneous open (§3.5, figure 8): SYN-RECEIVED, and our SYN again with an ACK of theirs.
      this.#state = 'syn-received';
      this.#sendSynAck();
      this.#armHandshake(SYNACK_RETRIES);
    }
  }

  #inSynReceived(h: TcpHeader, payload: Buffer): void {
    if (h.rst) {
      // §3.10.7.4: from an active open the connection is refused; a passive one just goes away.
      if (this.#active) this.#fail('ECONNREFUSED', -111, 'connect');
      else this.destroy();
      return;
    }
    if (h.syn && !h.ack) {
      this.#sendSynAck(); // their SYN again: our SYN-ACK was lost
      return;
    }
    if (!h.ack || h.ackNumber !== this.#sndNxt) return;
    if (h.syn) this.#send({ ack: true, seq: this.#sndNxt, ackNumber: this.#rcvNxt });
    this.#establish();
    if (payload.length > 0 || h.fin) this.#inEstablished(h, payload);
  }

  #inEstablished(h: TcpHeader, payload: Buffer): void {
    if (h.rst) {
      this.#fail('ECONNRESET', -104, 'read');
      return;
    }
    if (h.syn) {
      // Their SYN-ACK again: our ACK was lost.
      this.#send({ ack: true, seq: this.#sndNxt, ackNumber: this.#rcvNxt });
      return;
    }
    if (h.ack) this.#acknowledged(h.ackNumber);
    if (segmentLength(h, payload.length) === 0) return;
    const ahead = (h.seq - this.#rcvNxt) | 0;
    if (ahead > 0) this.#outOfOrder.set(h.seq, { payload, fin: h.fin === true });
    if (ahead === 0) {
      this.#accept(payload, h.fin === true);
      for (let next = this.#outOfOrder.get(this.#rcvNxt); next !== undefined; next = this.#outOfOrder.get(this.#rcvNxt)) {
        this.#outOfOrder.delete(this.#rcvNxt);
        this.#accept(next.payload, next.fin);
      }
    }
    // Every segment that carries data is acknowledged, duplicates and early ones too (RFC 9293 §3.10.7.4, "eighth").
    this.#send({ ack: true, seq: this.#sndNxt, ackNumber: this.#rcvNxt });
  }

  /** The peer has everything before `ackNumber`: forget it, and time what is left. */
  #acknowledged(ackNumber: number): void {
    let progressed = false;
    while (this.#unacked.length > 0) {
      const first = this.#unacked[0]!;
      const end = seqAdd(first.seq, first.payload.length + (first.fin ? 1 : 0));
      if (((end - ackNumber) | 0) > 0) break;
      this.#unacked.shift();
      progressed = true;
    }
    if (!progressed) return;
    this.#dataRetries = 0;
    this.#clock().clearTimeout(this.#retransmitTimer);
    this.#retransmitTimer = undefined;
    if (this.#unacked.length > 0) this.#armRetransmit();
  }

  /** Sends data or our FIN, and keeps it until acknowledged. */
  #sendData(payload: Buffer, fin: boolean): void {
    const seq = this.#sndNxt;
    this.#unacked.push({ seq, payload, fin });
    this.#send({ ack: true, ...(fin ? { fin: true } : {}), seq, ackNumber: this.#rcvNxt }, payload);
    this.#sndNxt = seqAdd(seq, payload.length + (fin ? 1 : 0));
    if (this.#retransmitTimer === undefined) this.#armRetransmit();
  }

  /** RFC 6298 §5: after an RTO without progress, everything unacknowledged again, and the RTO doubled. */
  #armRetransmit(): void {
    const rto = Math.min(MAX_RTO_MS, this.#rtoMs * 2 ** this.#dataRetries);
    this.#retransmitTimer = this.#clock().setTimeout(() => {
      this.#retransmitTimer = undefined;
      if (this.#unacked.length === 0) return;
      if (++this.#dataRetries > DATA_RETRIES) {
        if (this.#state === 'established') this.#fail('ETIMEDOUT', -110, 'read');
        return;
      }
      for (const u of this.#unacked) this.#send({ ack: true, ...(u.fin ? { fin: true } : {}), seq: u.seq, ackNumber: this.#rcvNxt }, u.payload);
      this.#armRetransmit();
    }, rto);
  }

  #accept(payload: Buffer, fin: boolean): void {
    if (this.readableEnded) return;
    this.#touch();
    this.#rcvNxt = seqAdd(this.#rcvNxt, payload.length + (fin ? 1 : 0));
    if (payload.length > 0) this.push(Buffer.from(payload));
    if (fin) this.push(null);
  }

  #establish(): void {
    this.#clock().clearTimeout(this.#handshakeTimer);
    // RFC 6298 §2.2: the first RTT sample R gives RTO = R + 4·R/2 (none from a retransmitted handshake: Karn).
    if (this.#retransmissions === 0) this.#rtoMs = Math.max(MIN_RTO_MS, 3 * (this.#clock().now() - this.#handshakeAt));
    this.#state = 'established';
    this.#touch();
    if (this.#active) {
      this.emit('connect');
      this.emit('ready');
    } else {
      this.#onEstablished?.();
    }
    for (const go of this.#waiting.splice(0)) go();
  }

  #armHandshake(retries: number): void {
    this.#clock().clearTimeout(this.#handshakeTimer);
    this.#retransmissions = 0;
    this.#handshakeAt = this.#clock().now();
    const arm = (rto: number): void => {
      this.#handshakeTimer = this.#clock().setTimeout(() => {
        if (this.#state !== 'syn-sent' && this.#state !== 'syn-received') return;
        if (this.#retransmissions++ >= retries) {
          if (this.#active) this.#fail('ETIMEDOUT', -110, 'connect');
          else this.destroy();
          return;
        }
        if (this.#state === 'syn-sent') this.#send({ syn: true, seq: this.#iss, ackNumber: 0 });
        else this.#sendSynAck();
        arm(rto * 2);
      }, rto);
    };
    arm(INITIAL_RTO_MS);
  }

  #sendSynAck(): void {
    this.#send({ syn: true, ack: true, seq: this.#iss, ackNumber: this.#rcvNxt });
  }

  #send(header: TcpHeader, payload?: Buffer, ttl?: number): void {
    this.#stack.send(this.#local!, this.#remote!, header, payload, ttl);
  }

  #fail(code: string, errno: number, syscall: string): void {
    const remote = this.#remote!;
    this.destroy(errnoError(code, errno, syscall, remote.address, remote.port));
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#state !== 'established') {
      this.#waiting.push(() => this._write(chunk, _encoding, callback));
      return;
    }
    this.#touch();
    this.#sendData(Buffer.from(chunk), false);
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#state !== 'established') {
      this.#waiting.push(() => this._final(callback));
      return;
    }
    this.#sendFin();
    callback();
  }

  #sendFin(): void {
    if (this.#finSent) return;
    this.#finSent = true;
    this.#sendData(Buffer.alloc(0), true);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const clock = this.#clock();
    clock.clearTimeout(this.#handshakeTimer);
    clock.clearTimeout(this.#idleTimer);
    if (this.#bound) this.#stack.unbind(this, this.#bound.port);
    const connected = this.#state === 'established';
    if (this.#local && this.#remote) {
      if (connected && error === null) {
        // close(): a FIN if we sent none (Linux sends a RST instead when data was left unread).
        if (this.readableLength > 0) this.#send({ rst: true, seq: this.#sndNxt, ackNumber: 0 });
        else this.#sendFin();
        this.#state = 'lingering';
        const [local, remote] = [this.#local, this.#remote];
        clock.setTimeout(() => {
          clock.clearTimeout(this.#retransmitTimer);
          this.#stack.disconnect(this, local, remote);
        }, LINGER_MS);
      } else {
        clock.clearTimeout(this.#retransmitTimer);
        // In SYN-SENT close() sends nothing; after a reset there is nothing to tell.
        this.#state = 'closed';
        this.#stack.disconnect(this, this.#local, this.#remote);
      }
    }
    callback(error);
  }

  /** net.Socket#setTimeout: 'timeout' after `ms` without activity (0 turns it off). */
  setTimeout(ms: number, callback?: () => void): this {
    this.#idleMs = ms;
    if (callback) {
      if (ms === 0) this.off('timeout', callback);
      else this.once('timeout', callback);
    }
    this.#touch();
    return this;
  }

  #touch(): void {
    const clock = this.#clock();
    clock.clearTimeout(this.#idleTimer);
    if (this.#idleMs > 0 && !this.destroyed) this.#idleTimer = clock.setTimeout(() => this.emit('timeout'), this.#idleMs);
  }

  #clock(): Host['network']['clock'] {
    return this.#stack.host.network.clock;
  }

  setNoDelay(): this { return this; }
  setKeepAlive(): this { return this; }
  ref(): this { return this; }
  unref(): this { return this; }
}

export interface SimTcpServerOptions {
  allowHalfOpen?: boolean;
}

export class SimTcpServer extends EventEmitter implements TcpAcceptor {
  readonly #stack: TcpStack;
  readonly #allowHalfOpen: boolean;
  #bound: Endpoint | undefined;
  #closed = false;
  maxConnections = Infinity;

  constructor(stack: TcpStack, options: SimTcpServerOptions = {}, connectionListener?: (socket: net.Socket) => void) {
    super();
    this.#stack = stack;
    this.#allowHalfOpen = options.allowHalfOpen ?? false;
    if (connectionListener) this.on('connection', connectionListener);
  }

  get listening(): boolean {
    return this.#bound !== undefined && !this.#closed;
  }

  /** listen(port, host?, callback?) or listen({ port, host }, callback?). */
  listen(...args: unknown[]): this {
    const { port, address: host, callback } = portArguments(args, 'host');
    if (callback) this.once('listening', callback);
    try {
      this.#bound = this.#stack.bind(this, host, port, { listening: true, syscall: 'listen' });
      this.#stack.listen(this, this.#bound);
    } catch (error) {
      process.nextTick(() => this.emit('error', error));
      return this;
    }
    process.nextTick(() => this.emit('listening'));
    return this;
  }

  address(): net.AddressInfo | null {
    return this.listening ? { address: this.#bound!.address, family: 'IPv4', port: this.#bound!.port } : null;
  }

  close(callback?: (error?: Error) => void): this {
    if (!this.listening) {
      const error = Object.assign(new Error('Server is not running.'), { code: 'ERR_SERVER_NOT_RUNNING' });
      if (callback) process.nextTick(callback, error);
      return this;
    }
    this.#closed = true;
    this.#stack.unlisten(this, this.#bound!);
    this.#stack.unbind(this, this.#bound!.port);
    if (callback) this.once('close', callback);
    process.nextTick(() => this.emit('close'));
    return this;
  }

  /** @internal A SYN for the listening port: a new connection, announced once its handshake completes. */
  syn(d: Datagram): void {
    const socket = new SimTcpSocket(this.#stack, { allowHalfOpen: this.#allowHalfOpen });
    socket.accepted(d.dst, d.src, d.tcp!, () => {
      if (this.listening) this.emit('connection', socket);
      else socket.destroy();
    });
  }

  ref(): this { return this; }
  unref(): this { return this; }
}

/**
 * node:net on `host`: pass it wherever natpunch takes a `TcpNet` (src/tcp-net.ts). The one cast
 * from the subset to the full types is here; the methods outside the subset do not exist.
 */
export function createSimTcpNet(host: Host): TcpNet {
  return {
    connect: (options) => new SimTcpSocket(host.tcp, { allowHalfOpen: options.allowHalfOpen }).connect(options as SimConnectOptions) as unknown as net.Socket,
    createServer: (options, connectionListener) => new SimTcpServer(host.tcp, options, connectionListener) as unknown as net.Server,
  };
}

