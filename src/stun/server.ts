import dgram from 'node:dgram';
import { type TcpNet, realTcpNet } from '../tcp-net.js';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { debuglog } from 'node:util';
import { type StunMessage, type TransportAddress, Method, MessageClass, decodeMessage, isRfc3489BindingRequest, isStunMessage, formatAddress, verifyFingerprint } from '../wire/index.js';
import { answerBinding } from './binding.js';
import { answerBindingFast } from './fast-binding.js';
import { StunStreamConnection } from './stream-connection.js';
import { SourceRateLimit } from './source-rate-limit.js';
import { ConnectionSlots } from '../connection-slots.js';
import { withDefaults } from '../options.js';
import { receiveDatagrams, type ReceivedBatch } from '../punch/udp-receive.js';
import { AddressedSender, socketFd } from '../punch/udp-batch.js';
import type { UdpFastPath } from '../turn/five-tuple.js';

const debug = debuglog('natpunch:stun');

/** Options of {@link StunServer.listen}. Only `address` is required. */
export interface StunServerOptions {
  /** Primary IP address to listen on. */
  address: string;
  /** Primary port, default 3478. */
  port?: number;
  /** Second IP address: turns on RFC 5780 behaviour discovery (four sockets: both IPs × both ports). */
  altAddress?: string;
  /** Alternate port, default 3479 (used only with altAddress). */
  altPort?: number;
  /** Also serve STUN over TCP on every listening address (default true). */
  tcp?: boolean;
  /** SOFTWARE attribute put in every response (default: none). */
  software?: string;
  /**
   * Bound on concurrent TCP (and TLS) connections (default 1024). When it is reached, a new
   * connection evicts the one that has gone longest without completing a message, rather than
   * being refused (docs/decisions/014-server-limits.md).
   */
  maxTcpConnections?: number;
  /** Concurrent TCP (and TLS) connections from one IP address; more are closed at once (default 64). */
  maxTcpConnectionsPerAddress?: number;
  /** A TCP connection idle this long is closed, ms (default 30 000). */
  tcpIdleTimeoutMs?: number;
  /**
   * A message (or ChannelData) must arrive whole within this long of its first byte, ms (default
   * 10 000; also the TLS handshake's deadline). Not reset by each byte: a trickle cannot hold a slot.
   */
  tcpFrameTimeoutMs?: number;
  /**
   * Reading from a TCP connection pauses while this many bytes of its output wait to be sent,
   * and resumes when they drain (default 65 536): a client that never reads cannot make the
   * server buffer its answers.
   */
  tcpHighWaterMark?: number;
  /** Output (relayed data, mostly) queued for one TCP connection beyond this is dropped, bytes (default 1 MiB). */
  maxTcpBufferedBytes?: number;
  /**
   * STUN requests answered per second per source IP over UDP (default 100; 0: no limit); a
   * burst of twice as many is allowed. Requests over it are dropped silently.
   */
  udpRatePerSource?: number;
  /** Source IPs the UDP rate limit remembers at once (default 65 536); the oldest is forgotten first. */
  udpRateLimitSources?: number;
  /**
   * @internal
   * A protocol sharing the ports (TURN): gets every message that is not a Binding request and
   * every ChannelData message. Messages it does not take are dropped silently (RFC 8489 §6.3:
   * unknown methods in requests get 400, but an unauthenticated UDP 400 to a spoofable source is
   * an amplification vector, so the server stays silent).
   */
  shared?: SharedPortHandler;
  /** STUN (and TURN) over TLS on the primary address (RFC 8489 §6.2.3). */
  tls?: {
    /** PEM certificate chain. */
    cert: string | Buffer;
    /** PEM private key. */
    key: string | Buffer;
    /** The TLS port (default 5349). */
    port?: number;
  };
  /**
   * @internal
   * Observes every Binding request before it is answered (the rendezvous server learns which
   * source address sent which USERNAME token). Must not throw; exceptions are logged and ignored.
   */
  onBinding?: (request: StunMessage, from: TransportAddress, transport: 'udp' | 'tcp') => void;
  /** Read and send UDP in batches through native/udp-batch where it is built (default true; decision 009). */
  native?: boolean;
  /** Makes the UDP sockets (default `dgram.createSocket`; src/sim passes its own). */
  createUdpSocket?: (options: dgram.SocketOptions) => dgram.Socket;
  /** @internal Makes the TCP listeners (default node:net; src/sim passes its own). */
  net?: TcpNet;
}

/** The limits of {@link StunServerOptions}, as `natpunch serve` passes them to every address's server. */
export type StunLimits = Pick<StunServerOptions, 'maxTcpConnections' | 'maxTcpConnectionsPerAddress' | 'tcpIdleTimeoutMs' | 'tcpFrameTimeoutMs'
  | 'tcpHighWaterMark' | 'maxTcpBufferedBytes' | 'udpRatePerSource' | 'udpRateLimitSources'>;

/** A client as a protocol sharing the STUN ports sees it: its 5-tuple and a way to answer. */
export interface StunClientSide {
  readonly transport: 'udp' | 'tcp' | 'tls';
  readonly local: TransportAddress;
  readonly remote: TransportAddress;
  send(bytes: Uint8Array | readonly Uint8Array[]): void;
  /**
   * Sends bytes[start, end) as one datagram, copied before it returns (UDP clients only): the
   * relay writes a ChannelData header in front of a received datagram and sends it from the
   * batch's own bytes, with no object per datagram.
   */
  sendRange?(bytes: Uint8Array, start: number, end: number): void;
}

export interface SharedPortHandler {
  /** Returns false for a message it does not handle. */
  handleMessage(message: StunMessage, client: StunClientSide): boolean;
  /**
   * The ChannelData message bytes[start, end) (a range, so a received batch is passed without a
   * view object per datagram); the bytes are valid only during the call.
   */
  handleChannelData(bytes: Uint8Array, client: StunClientSide, start?: number, end?: number): void;
  /** A TCP or TLS client connection closed. */
  clientClosed(client: StunClientSide): void;
}

/** Counters of a {@link StunServer} (`server.stats`), since it started. */
export interface StunServerStats {
  /** Binding requests received. */
  requests: number;
  /** Success responses sent. */
  responses: number;
  /** Error responses sent. */
  errors: number;
  /** Datagrams and messages dropped: not STUN, malformed, or not for this server. */
  dropped: number;
  /** TCP (and TLS) connections open now. */
  tcpConnections: number;
  /** UDP requests dropped by the per-source rate limit. */
  rateLimited: number;
  /** TCP (and TLS) connections closed at once: over the per-address cap, or full with nothing to evict. */
  tcpRefused: number;
  /** TCP (and TLS) connections closed to make room for a new one. */
  tcpEvicted: number;
  /** TCP (and TLS) connections closed because a message did not arrive whole within tcpFrameTimeoutMs. */
  tcpFrameTimeouts: number;
  /** TCP (and TLS) connections not being read now, because their output has not drained. */
  tcpPaused: number;
  /** Messages for TCP (and TLS) clients dropped because their output held maxTcpBufferedBytes. */
  tcpOutputDropped: number;
  /** Success and error responses by the transport they went over (metrics: docs/metrics.md). */
  byTransport: Record<'udp' | 'tcp' | 'tls', {
    /** Success responses sent over this transport. */
    responses: number;
    /** Error responses sent over this transport. */
    errors: number;
  }>;
}

interface Endpoint {
  ip: 0 | 1;
  port: 0 | 1;
  local: TransportAddress;
  udp: dgram.Socket;
  /** Replies leave through here: one sendmmsg per received batch where the addon is built. */
  sender: AddressedSender;
  /** UDP clients by address and port, so ChannelData finds its client without an object per datagram. */
  clients: Map<string, Map<number, StunClientSide>>;
  clientCount: number;
  /** This socket as the relay's fast path sees it (src/turn/fast-path.ts); its `forwards` is undefined unless the addon reads it. */
  fastPath?: UdpFastPath;
  tcp?: net.Server;
  tls?: tls.Server;
}

/**
 * STUN server: stateless Binding over UDP and TCP, with full RFC 5780 behaviour when given an
 * alternate address (responses from the other IP and/or port on CHANGE-REQUEST).
 * @see RFC 8489 §6.3, RFC 5780 §6
 */
export class StunServer {
  /** Counters since the server started. */
  readonly stats: StunServerStats = {
    requests: 0, responses: 0, errors: 0, dropped: 0, tcpConnections: 0,
    rateLimited: 0, tcpRefused: 0, tcpEvicted: 0, tcpFrameTimeouts: 0, tcpPaused: 0, tcpOutputDropped: 0,
    byTransport: { udp: { responses: 0, errors: 0 }, tcp: { responses: 0, errors: 0 }, tls: { responses: 0, errors: 0 } },
  };
  #endpoints: Endpoint[] = [];
  #options: Required<StunLimits> & StunServerOptions;
  #connections = new Set<net.Socket>();
  /** TCP and TLS connections together: one client address's share is counted across both. */
  readonly #slots: ConnectionSlots<net.Socket>;
  readonly #rateLimit: SourceRateLimit;
  /** TLS connections between TCP accept and the end of the handshake, by remote address and port: their slot is their TCP socket's. */
  readonly #handshaking = new Map<string, net.Socket>();

  private constructor(options: StunServerOptions) {
    this.#options = withDefaults(STUN_LIMIT_DEFAULTS, options);
    const o = this.#options;
    this.#slots = new ConnectionSlots({ max: o.maxTcpConnections, maxPerAddress: o.maxTcpConnectionsPerAddress });
    this.#rateLimit = new SourceRateLimit({ rate: o.udpRatePerSource, maxSources: o.udpRateLimitSources });
    for (const name of ['tcpIdleTimeoutMs', 'tcpFrameTimeoutMs', 'tcpHighWaterMark', 'maxTcpBufferedBytes'] as const) {
      if (!Number.isInteger(o[name]) || o[name] < 1) throw new RangeError(`StunServer: ${name} ${o[name]}; expected an integer >= 1`);
    }
  }

  /**
   * Start a server: binds every socket (UDP, and TCP/TLS unless turned off; four addresses with
   * `altAddress`). Rejects, with nothing left bound, when any of them cannot be bound.
   */
  static async listen(options: StunServerOptions): Promise<StunServer> {
    const server = new StunServer(options);
    try {
      await server.#bindAll();
    } catch (error) {
      await server.close();
      throw error;
    }
    return server;
  }

  /** Every listening transport address (the primary first). */
  get addresses(): TransportAddress[] {
    return this.#endpoints.map((e) => e.local);
  }

  /** Close every socket and TCP connection. */
  async close(): Promise<void> {
    for (const c of this.#connections) c.destroy();
    await Promise.all(this.#endpoints.map(async (e) => {
      await new Promise<void>((resolve) => e.udp.close(() => resolve())).catch(() => undefined);
      if (e.tcp?.listening) await new Promise<void>((resolve) => e.tcp!.close(() => resolve()));
      if (e.tls?.listening) await new Promise<void>((resolve) => e.tls!.close(() => resolve()));
    }));
    this.#endpoints = [];
  }

  async #bindAll(): Promise<void> {
    const port = this.#options.port ?? 3478;
    const altPort = this.#options.altPort ?? 3479;
    // An ephemeral UDP port may be taken over TCP (an outgoing connection's port, say): with port
    // 0, start again on another ephemeral port rather than fail. Fixed ports fail at once.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#bindPorts(port, altPort);
      } catch (error) {
        const retry = (port === 0 || altPort === 0) && (error as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 8;
        if (!retry) throw error;
        debug('ephemeral port taken over TCP (%s), binding again', (error as Error).message);
        await this.close();
      }
    }
  }

  async #bindPorts(port: number, altPort: number): Promise<void> {
    const { address, altAddress } = this.#options;
    const ips = altAddress ? [address, altAddress] : [address];
    const ports = altAddress ? [port, altPort] : [port];
    // Port 0 asks for ephemeral ports: the first IP's sockets choose them, the second IP reuses
    // them, so the four sockets keep RFC 5780's two-IPs-by-two-ports shape.
    for (let i = 0; i < ips.length; i++) {
      for (let j = 0; j < ports.length; j++) {
        const endpoint = await this.#bindOne(i as 0 | 1, j as 0 | 1, ips[i]!, ports[j]!);
        ports[j] = endpoint.local.port;
      }
    }
  }

  async #bindOne(ip: 0 | 1, port: 0 | 1, address: string, portNumber: number): Promise<Endpoint> {
    const family = net.isIPv6(address) ? 6 : 4;
    const udp = (this.#options.createUdpSocket ?? dgram.createSocket)({ type: family === 6 ? 'udp6' : 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
    udp.bind(portNumber, address);
    await once(udp, 'listening');
    const bound = udp.address();
    const endpoint: Endpoint = {
      ip, port, udp, local: { family, address: bound.address, port: bound.port },
      sender: new AddressedSender(udp, { native: this.#options.native }), clients: new Map(), clientCount: 0,
    };
    // Listed at once, so that close() frees this socket if its TCP or TLS twin cannot be bound.
    this.#endpoints.push(endpoint);
    // Many datagrams per read where native/udp-batch is built (decision 009); node:dgram's 'message' otherwise.
    // GRO: a relay client's burst of ChannelData (sent with UDP GSO) arrives as one read, not one per datagram.
    const receiver = receiveDatagrams(udp, (batch) => { for (let i = 0; i < batch.count; i++) this.#onDatagram(endpoint, batch, i); }, { native: this.#options.native, gro: true });
    endpoint.fastPath = {
      get forwards() { return receiver.forwards; },
      outFd: () => socketFd(udp),
      ipv6Socket: family === 6,
    };
    udp.on('error', (error) => debug('udp %s: %s', formatAddress(endpoint.local), error.message));
    if (this.#options.tcp !== false) {
      // No server.maxConnections: it refuses newcomers when full, and #admit evicts instead.
      const tcp = (this.#options.net ?? realTcpNet).createServer({}, (socket) => {
        if (this.#admit(socket)) this.#onConnection(endpoint, socket, socket, 'tcp');
      });
      tcp.listen(bound.port, address);
      await once(tcp, 'listening');
      endpoint.tcp = tcp;
    }
    const secure = this.#options.tls;
    if (secure && ip === 0 && port === 0) {
      // The handshake is one more frame: it gets the frame deadline, not node's 120 s.
      const server = tls.createServer({ cert: secure.cert, key: secure.key, handshakeTimeout: this.#options.tcpFrameTimeoutMs }, (socket) => {
        const key = `${socket.remoteAddress}|${socket.remotePort}`;
        const raw = this.#handshaking.get(key);
        this.#handshaking.delete(key);
        if (raw === undefined || raw.destroyed) return void socket.destroy();
        this.#onConnection(endpoint, socket, raw, 'tls');
      });
      // A slot is taken at TCP accept, before the handshake: handshakes are what a slowloris would hold.
      server.on('connection', (raw: net.Socket) => {
        if (!this.#admit(raw)) return;
        const key = `${raw.remoteAddress}|${raw.remotePort}`;
        this.#handshaking.set(key, raw);
        raw.once('close', () => {
          if (this.#handshaking.get(key) === raw) this.#handshaking.delete(key);
          this.#slots.release(raw);
        });
      });
      server.on('tlsClientError', (error) => debug('tls: %s', error.message));
      server.listen(secure.port ?? 5349, address);
      await once(server, 'listening');
      endpoint.tls = server;
    }
    return endpoint;
  }

  /** The endpoint that differs from `e` in both IP and port: RFC 5780's OTHER-ADDRESS. */
  #other(e: Endpoint): Endpoint | undefined {
    return this.#endpoints.find((x) => x.ip !== e.ip && x.port !== e.port);
  }

  /** The TLS listening address, when STUN over TLS runs. */
  get tlsAddress(): TransportAddress | undefined {
    const server = this.#endpoints[0]?.tls;
    const bound = server?.address();
    if (!bound || typeof bound === 'string') return undefined;
    return { family: bound.family === 'IPv6' ? 6 : 4, address: bound.address, port: bound.port };
  }

  /** Datagram `i` of `batch`: its bytes are the batch's (src/punch/udp-receive.ts), valid only until this returns. */
  #onDatagram(endpoint: Endpoint, batch: ReceivedBatch, i: number): void {
    const shared = this.#options.shared;
    const slab = batch.slab;
    const offset = batch.offset(i);
    const length = batch.length(i);
    if (length === 0) return void this.stats.dropped++;
    const address = batch.address(i);
    const port = batch.port(i);
    // ChannelData first: it is the relay's hot path (RFC 8656 §12: first two bits 0b01).
    if (shared && (slab[offset]! & 0xc0) === 0x40) {
      shared.handleChannelData(slab, this.#udpClient(endpoint, address, port, batch.family(i)), offset, offset + length);
      return;
    }
    // Plain Binding requests (no attributes but SOFTWARE/FINGERPRINT) are answered straight from
    // the bytes, identical to the general path (test/stun/fast-binding.test.ts). They carry no
    // USERNAME, so onBinding observers (which key on it) lose nothing.
    // Requests answered per source address (decision 014-server-limits). Only requests (class
    // bits C1 0x0100 and C0 0x0010 both 0, RFC 8489 §5): ChannelData above and TURN's Send
    // indications are relayed data, bounded per allocation by TURN's bandwidth limit instead.
    const request = (slab[offset]! & 0x01) === 0 && (slab[offset + 1]! & 0x10) === 0;
    if (request && !this.#rateLimit.allow(address)) return void this.stats.rateLimited++;
    const remote: TransportAddress = { family: batch.family(i), address, port };
    const view = batch.view(i);
    const fast = answerBindingFast(view, { local: endpoint.local, remote, transport: 'udp', other: this.#other(endpoint)?.local, software: this.#options.software });
    if (fast !== null) {
      this.stats.requests++;
      this.stats.responses++;
      this.stats.byTransport.udp.responses++;
      endpoint.sender.send(fast, port, address);
      return;
    }
    // The general path may keep parts of the message past this call (a TURN Allocate awaits a
    // relayed port, then reads its attributes): it gets a copy, not the batch's bytes.
    const data = Buffer.from(view);
    // RFC 8489 §11: answer RFC 3489 clients too (Binding only, over UDP, where they ran).
    const classic = !isStunMessage(data) && isRfc3489BindingRequest(data);
    if (!classic && !isStunMessage(data)) {
      this.stats.dropped++;
      return;
    }
    let message: StunMessage;
    try {
      message = decodeMessage(data, { rfc3489: classic });
    } catch (error) {
      this.stats.dropped++;
      debug('drop from %s:%d: %s', address, port, (error as Error).message);
      return;
    }
    if (!fingerprintHolds(message)) return void this.stats.dropped++;
    this.stats.requests++;
    this.#observeBinding(message, remote, 'udp');
    if (message.method !== Method.Binding && shared?.handleMessage(message, this.#udpClient(endpoint, address, port, remote.family))) return;
    const reply = answerBinding(message, {
      local: endpoint.local, remote, transport: 'udp', other: this.#other(endpoint)?.local, software: this.#options.software,
    });
    if (!reply) {
      this.stats.dropped++;
      return;
    }
    const from = this.#endpoints.find((x) => x.ip === (reply.changeIp ? 1 - endpoint.ip : endpoint.ip) && x.port === (reply.changePort ? 1 - endpoint.port : endpoint.port)) ?? endpoint;
    this.#count(reply.bytes, 'udp');
    from.sender.send(reply.bytes, reply.to.port, reply.to.address);
  }

  /**
   * The sending side of one UDP client (the 5-tuple is the datagram's), made once per client
   * and kept while fewer than MAX_UDP_CLIENTS are known (then the table starts over): the relay's
   * hot path makes no object per datagram. Sends are copied as queued (AddressedSender), so a
   * caller may pass views of a received batch.
   */
  #udpClient(endpoint: Endpoint, address: string, port: number, family: 4 | 6): StunClientSide {
    let byPort = endpoint.clients.get(address);
    let client = byPort?.get(port);
    if (client !== undefined) return client;
    if (endpoint.clientCount >= MAX_UDP_CLIENTS) {
      endpoint.clients.clear();
      endpoint.clientCount = 0;
      byPort = undefined;
    }
    if (byPort === undefined) endpoint.clients.set(address, (byPort = new Map()));
    const sender = endpoint.sender;
    client = {
      transport: 'udp', local: endpoint.local, remote: { family, address, port },
      send: (bytes) => sender.send(bytes, port, address),
      sendRange: (bytes, start, end) => sender.sendRange(bytes, start, end, port, address),
      ...(endpoint.fastPath ? { fastPath: endpoint.fastPath } : {}),
    };
    byPort.set(port, client);
    endpoint.clientCount++;
    return client;
  }

  /**
   * A slot for a new TCP connection (see ConnectionSlots): false, with the socket destroyed, when
   * its address has its share or every slot is held by connections that may not be evicted.
   */
  #admit(socket: net.Socket): boolean {
    const admission = this.#slots.admit(socket, socket.remoteAddress ?? '');
    if (admission === 'over-address-cap' || admission === 'full') {
      this.stats.tcpRefused++;
      debug('tcp %s: refused (%s)', socket.remoteAddress, admission);
      socket.destroy();
      return false;
    }
    if (admission === 'evicted') this.stats.tcpEvicted++;
    return true;
  }

  /** A TCP connection, or a TLS one once its handshake is done; `slot` is the TCP socket holding its slot. */
  #onConnection(endpoint: Endpoint, socket: net.Socket, slot: net.Socket, transport: 'tcp' | 'tls'): void {
    this.#connections.add(socket);
    this.stats.tcpConnections++;
    const shared = this.#options.shared;
    const remote: TransportAddress = {
      family: net.isIPv6(socket.remoteAddress ?? '') ? 6 : 4, address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0,
    };
    const o = this.#options;
    const connection: StunStreamConnection = new StunStreamConnection(socket, {
      // A TURN client's ChannelData may be up to 64 KiB; plain STUN needs no more than 2 KiB.
      maxFrame: shared ? 65_536 + 4 : 2048,
      idleTimeoutMs: o.tcpIdleTimeoutMs, frameTimeoutMs: o.tcpFrameTimeoutMs,
      highWaterMark: o.tcpHighWaterMark, maxBufferedBytes: Math.max(o.maxTcpBufferedBytes, o.tcpHighWaterMark),
    }, {
      frame: (frame) => this.#onFrame(endpoint, frame, remote, client, connection, transport),
      garbage: (error) => {
        debug('tcp %s: %s', formatAddress(remote), error.message);
        this.stats.dropped++;
      },
      progress: () => this.#slots.progress(slot),
      frameTimeout: () => {
        debug('tcp %s: no whole message within %d ms of its first byte', formatAddress(remote), o.tcpFrameTimeoutMs);
        this.stats.tcpFrameTimeouts++;
      },
      paused: (paused) => void (this.stats.tcpPaused += paused ? 1 : -1),
    });
    const client: StunClientSide = {
      transport, local: endpoint.local, remote,
      send: (bytes) => {
        if (!connection.write(bytes)) this.stats.tcpOutputDropped++;
      },
    };
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.#connections.delete(socket);
      this.#slots.release(slot);
      this.stats.tcpConnections--;
      shared?.clientClosed(client);
    });
  }

  #onFrame(endpoint: Endpoint, frame: Uint8Array, remote: TransportAddress, client: StunClientSide, connection: StunStreamConnection, transport: 'tcp' | 'tls'): void {
    const shared = this.#options.shared;
    if (shared && (frame[0]! & 0xc0) === 0x40) return shared.handleChannelData(frame, client);
    let message: StunMessage;
    try {
      message = decodeMessage(frame);
    } catch {
      return void this.stats.dropped++;
    }
    if (!fingerprintHolds(message)) return void this.stats.dropped++;
    this.stats.requests++;
    this.#observeBinding(message, remote, 'tcp');
    if (message.method !== Method.Binding && shared?.handleMessage(message, client)) return;
    const reply = answerBinding(message, { local: endpoint.local, remote, transport: 'tcp', other: this.#other(endpoint)?.local, software: this.#options.software });
    if (!reply) return void this.stats.dropped++;
    this.#count(reply.bytes, transport);
    if (!connection.write(reply.bytes)) this.stats.tcpOutputDropped++;
  }

  #observeBinding(message: StunMessage, from: TransportAddress, transport: 'udp' | 'tcp'): void {
    if (!this.#options.onBinding || message.method !== Method.Binding || message.messageClass !== MessageClass.Request) return;
    try {
      this.#options.onBinding(message, from, transport);
    } catch (error) {
      debug('onBinding threw: %s', (error as Error).message);
    }
  }

  #count(bytes: Uint8Array, transport: 'udp' | 'tcp' | 'tls'): void {
    // The class bits of an error response: 0b11 in bits 0x0110 of the message type.
    if ((bytes[0]! & 0x01) && (bytes[1]! & 0x10)) {
      this.stats.errors++;
      this.stats.byTransport[transport].errors++;
    } else {
      this.stats.responses++;
      this.stats.byTransport[transport].responses++;
    }
  }
}

/** Defaults of the limits; why each: docs/decisions/014-server-limits.md. */
export const STUN_LIMIT_DEFAULTS: Required<StunLimits> = {
  maxTcpConnections: 1024,
  maxTcpConnectionsPerAddress: 64,
  tcpIdleTimeoutMs: 30_000,
  tcpFrameTimeoutMs: 10_000,
  tcpHighWaterMark: 65_536,
  maxTcpBufferedBytes: 1 << 20,
  udpRatePerSource: 100,
  udpRateLimitSources: 65_536,
};

/**
 * False when the message carries a FINGERPRINT that is wrong or not last: RFC 8489 §7.3 says
 * such a message is not STUN (it may be another protocol sharing the port, §14.7), and it is
 * discarded silently, over every transport, whatever its method.
 */
function fingerprintHolds(message: StunMessage): boolean {
  return verifyFingerprint(message) !== false;
}

/** UDP clients remembered per listening socket (#udpClient): a flood of new sources resets the table, never grows it. */
const MAX_UDP_CLIENTS = 65_536;
