import dgram from 'node:dgram';
import os from 'node:os';
import { isIPv6 } from 'node:net';
import { once, EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { debuglog } from 'node:util';
import { AbortedError, NatpunchError, RefusedError, UsageError } from '../errors.js';
import { type AllowList, NOT_ALLOWED, allowPredicate } from './allow-list.js';
import { type Identity, loadOrCreateIdentity, defaultKeyFile, normalizePeerId } from '../identity/index.js';
import { StunUdpClient } from '../stun/udp-client.js';
import { formatAddress, parseAddress, type TransportAddress } from '../wire/index.js';
import { UdpMux } from '../punch/udp-mux.js';
import { ipLiteralLookup } from '../punch/ip-literal-lookup.js';
import type { UdpCheckSession } from '../punch/udp-checks.js';
import type { PunchInstruction, SessionReport, SignedReachability, Transport } from '../rendezvous/client.js';
import { RendezvousError } from '../rendezvous/errors.js';
import {
  type DisconnectInfo, type ReconnectInfo, type ReconnectOptions, ReconnectingRendezvousClient,
} from '../rendezvous/reconnecting-client.js';
import { type Reachability, type ReachableTransport, CAPABILITIES } from '../rendezvous/messages.js';
import { TcpMapping } from './tcp-mapping.js';
import { learnShortTcpMapping, type ShortTcpMapping } from './tcp-mapping-short.js';
import { type KeepaliveState, MappingKeepalive, STREAM_KEEPALIVE_MS } from './keepalive.js';
import type { Connection } from './connection.js';
import { Establisher } from './establish.js';
import { type IncomingLimits, IncomingGate } from './incoming-limits.js';
import { Recovery } from './recovery.js';
import { DialBackResponder } from './reachability.js';
import { ReversalListener } from './reversal-listener.js';
import { PortPredictor } from './port-predictor.js';
import type { LocalCandidate } from '../punch/candidate.js';
import { PeerPortMapping, type PeerPortMappingOptions } from './port-mapping.js';
import type { PortMappingInfo } from '../portmap/index.js';
import { ipv6HostAddresses } from '../punch/ipv6-host.js';
import type { PortMapError } from '../errors.js';

const debug = debuglog('natpunch:peer');

/** Interval of STUN keepalives toward the rendezvous server's STUN endpoint (see constructor). */
export const KEEPALIVE_MS = 15_000;

/** How long close() lets connections whose end is in flight deliver it (a few retransmissions). */
const CLOSE_DRAIN_MS = 2_000;
/** How long a short connection's L is remembered for the punch its signed mapping is for. */
const SHORT_TCP_MAPPING_KEEP_MS = 60_000;

export type { PathKind } from '../path/raw-path.js';

/** Options of {@link createPeer}. Only `server` is required. */
export interface PeerOptions {
  /**
   * Rendezvous server, e.g. ws://198.51.100.10:8080/ (`natpunch serve`'s HTTP port); or several,
   * nodes sharing one registry (`serve --redis`): the peer registers at the first that answers
   * and moves to the next when its node goes away.
   */
  server: string | readonly string[];
  /** This peer's key pair, its peer id (default: read from, or created in, `keyFile`). */
  identity?: Identity;
  /** Key file used when no identity is given (default $NATPUNCH_HOME/key or ~/.natpunch/key). */
  keyFile?: string;
  /** Local address for the peer's UDP socket (default: all). An IPv4 address here also means no IPv6 socket. */
  bindAddress?: string;
  /**
   * Who may connect: peer ids (e.g. from an allowed-peers file, allow-list.ts) or a predicate.
   * Any other initiator is refused with ERR_REFUSED ("not on its allow-list") before a packet is
   * sent toward it, and reported as 'refused' here. Default: everyone.
   */
  allow?: AllowList;
  /**
   * Gather IPv6 too (default true): when this host has a global IPv6 address at start-up, a
   * second UDP socket (IPv6 only) signs a host candidate on each such address (ipv6-host.ts) and
   * proves a server-reflexive one when the rendezvous server is reached over IPv6. Checks pair
   * only candidates of one family (RFC 8445 §6.1.2.2). See docs/ipv6.md.
   */
  ipv6?: boolean;
  /**
   * Decide whether to accept a connection from this peer, after `allow` (default: accept all);
   * a string refuses with that reason, which the initiator's error shows.
   */
  accept?: (peerId: string) => boolean | string | Promise<boolean | string>;
  /**
   * Bounds on incoming connections, checked after `allow` and before `accept`: at most
   * `maxConcurrent` being set up at once (default 8) and `perMinute` attempts per initiator
   * (default 12, burst 4). The excess is refused (`RefusedError` kind `busy` or `rate-limited`
   * at the initiator) and reported as 'refused'. See incoming-limits.ts.
   */
  incoming?: Partial<IncomingLimits>;
  /**
   * Pins the STUN keepalive interval toward the rendezvous server's STUN endpoint, ms (0
   * disables). Default: sized to the measured mapping lifetime, starting at KEEPALIVE_MS
   * (see keepalive.ts).
   */
  keepaliveMs?: number;
  /** Keepalive sizing: `sizing` (default: true unless keepaliveMs is given), `maxSeconds` the measurement probes (default 120). */
  keepalive?: {
    /** Measure the mapping lifetime and size the interval to 0.8 × it (default: true unless `keepaliveMs` is given). */
    sizing?: boolean;
    /** The longest idle time the lifetime measurement probes, seconds (default 120). */
    maxSeconds?: number;
  };
  /**
   * After the connection to the rendezvous server drops, register again with backoff (default:
   * 0.5 s doubling to 30 s with jitter, back to 0.5 s after a registration that lasted a minute);
   * false: stay disconnected. See 'disconnected' and 'reconnected'.
   */
  reconnect?: ReconnectOptions | false;
  /** Aborts creating the peer (the first registration). */
  signal?: AbortSignal;
  /**
   * Ask the gateway (PCP, NAT-PMP, UPnP-IGD) to forward the UDP socket's port, and sign the
   * mapping as a `mapped` candidate (docs/portmap.md). Runs beside registration; creating the
   * peer waits for it at most its budget (default 2 s). Off by default: a library should not
   * change a router's configuration unasked (`natpunch listen/connect --port-mapping`).
   */
  portMapping?: boolean | PeerPortMappingOptions;
  /**
   * Tell the rendezvous server how each connection this peer initiated through it ended:
   * connected (the path, the technique, the time it took) or failed, never addresses or data. Operators
   * see it in `/metrics` and the dashboard (which technique wins, per NAT pair); only sent to a
   * server that negotiated the 'report' capability. Default true.
   */
  report?: boolean;
}

/** Options of {@link Peer.connect}. */
export interface ConnectOptions {
  /** Aborts connecting: the promise rejects with AbortedError (`ERR_ABORTED`) and everything started is cleaned up. */
  signal?: AbortSignal;
  /**
   * 'udp' or 'tcp' forces one transport (punching, or connection reversal when exactly one side
   * is directly reachable); 'auto' (default) races both and prefers UDP, with the relay as the
   * fallback when the server offers one (see path-choice.ts); 'relay' uses the relay only.
   */
  transport?: 'auto' | 'udp' | 'tcp' | 'relay';
}

export { Connection } from './connection.js';

/**
 * A natpunch peer: one UDP socket (its NAT mapping is the peer's public identity on the
 * network), a registration at a rendezvous server, and connections to other peers by id.
 * Emits 'connection' (Connection) for incoming ones.
 *
 * The registration is kept: when the connection to the server drops the peer emits
 * 'disconnected' (reason, { retryInMs }) and registers again from scratch (new hello, new STUN
 * proof from the same socket, new signed registration and dial-back), then emits 'reconnected'
 * ({ srflx, attempts, downMs }). Established connections do not depend on the server and are
 * not touched. While disconnected, connect() fails at once with RendezvousError reason
 * 'disconnected' (ERR_RENDEZVOUS). A permanent refusal ('replaced', 'bad-signature',
 * 'unsupported-version', ...) ends the attempts: 'disconnected' with retryInMs null.
 *
 * With `allow`, an initiator not on the list is refused (it gets ERR_REFUSED) before anything is
 * sent toward it, and the peer emits 'refused' (RefusedInfo: { peerId, reason }); so is one
 * beyond the `incoming` limits (too many connections being set up, or too many attempts).
 *
 * With `portMapping`, it also emits 'port-mapping' (PortMappingInfo) when the gateway mapped its
 * UDP port (and again when a renewal moved it) and 'port-mapping-failed' (PortMapError) when
 * that failed or the mapping was lost; neither affects anything else.
 *
 * Create one with {@link createPeer}; end it with {@link Peer.close}.
 *
 * Events:
 * - `'connection'` `(connection: Connection)`: another peer connected to this one (after `allow`
 *   and `accept` said yes, the punch and the Noise handshake).
 * - `'connection-error'` `(error: Error)`: an incoming connection failed before it was ready
 *   (punching found no path, the handshake failed, …); the peer goes on.
 * - `'refused'` `(info: RefusedInfo)`: an initiator was refused by `allow` (not on the list) or by
 *   the `incoming` limits (reason `busy: ...` or `rate-limited: ...`).
 * - `'disconnected'` `(reason: RendezvousError, info: DisconnectInfo)`: the rendezvous connection
 *   dropped; `info.retryInMs` is when the next attempt starts, or null when there will be none.
 * - `'reconnected'` `(info: ReconnectInfo)`: registered again after a drop.
 * - `'keepalive'` `(info: KeepaliveInfo)`: the keepalive interval or measured lifetime changed.
 * - `'srflx'` `(address: string)`: the server-reflexive UDP endpoint moved (the NAT remapped),
 *   and the registration was updated.
 * - `'tcp-mapping'` `(address: string)`: the kept STUN/TCP connection was reopened, with this
 *   public TCP endpoint.
 * - `'port-mapping'` `(info: PortMappingInfo)` and `'port-mapping-failed'` `(error: PortMapError)`:
 *   with `portMapping`, as above.
 *
 * Errors: `connect()` rejects with {@link RefusedError} (`ERR_REFUSED`), {@link RendezvousError}
 * (`ERR_RENDEZVOUS`: `peer-not-found`, `disconnected`, …), {@link AbortedError} (`ERR_ABORTED`) or
 * a NatpunchError with `ERR_TRANSPORT` when no path could be made; every code is in
 * [docs/errors.md](../../docs/errors.md).
 */
export class Peer extends EventEmitter {
  /** This peer's key pair; its public key is the peer id. */
  readonly identity: Identity;
  readonly #socket: dgram.Socket;
  /** The IPv6 socket, when this host had a global IPv6 address at start-up. */
  readonly #socket6: dgram.Socket | undefined;
  readonly #mux: UdpMux;
  readonly #stun: StunUdpClient;
  #predictor: PortPredictor | undefined;
  readonly #rendezvous: ReconnectingRendezvousClient;
  readonly #sessions = new Set<UdpCheckSession>();
  readonly #connections = new Set<Connection>();
  /** The kept STUN/TCP connection, replaced when a reconnection finds it dead. */
  #tcp: TcpMapping | undefined;
  /** The STUN server #tcp is kept to. */
  #tcpServer: TransportAddress | null;
  readonly #options: PeerOptions;
  readonly #bindAddress: string | undefined;
  readonly #responder: DialBackResponder;
  readonly #listener: ReversalListener | undefined;
  /** Aborted by close(): stops TCP punches still retrying from L. */
  readonly #closing = new AbortController();
  /** The UDP keepalive, sized to the mapping lifetime (undefined: no STUN server, or disabled). */
  #udpKeepalive: MappingKeepalive | undefined;
  /** The STUN server the UDP keepalive runs toward. */
  #keepaliveServer: TransportAddress | null = null;
  /**
   * Whether the keepalive's lifetime measurement was over (or pinned) when the registration was
   * lost. A server outage falsifies a measurement still running: its probes go unanswered as if
   * every mapping had died, which would pin the keepalive at its 1 s floor.
   */
  #keepaliveSound = true;
  /** The kept TCP connection's keepalive. */
  #tcpKeepalive: NodeJS.Timeout | undefined;
  /** Short connections' mappings signed while no kept connection was alive, by mapped address: their L to punch from. */
  readonly #shortTcp = new Map<string, ShortTcpMapping>();
  #closed = false;
  readonly #establisher: Establisher;
  readonly #recovery: Recovery;
  /** Gracefully closed UDP streams still answering retransmissions (stream.settle()). */
  readonly #settling = new Set<Promise<void>>();
  /** Incoming punches running now (counted against `incoming.maxConcurrent`). */
  #incomingRunning = 0;
  #gate: IncomingGate | undefined;
  readonly #portMapping: PeerPortMapping | undefined;

  private constructor(
    identity: Identity, socket: dgram.Socket, mux: UdpMux, stun: StunUdpClient, rendezvous: ReconnectingRendezvousClient, options: PeerOptions,
    tcp: TcpMapping | undefined, responder: DialBackResponder, listener: ReversalListener | undefined,
    portMapping: PeerPortMapping | undefined,
  ) {
    super();
    this.#options = options;
    this.#portMapping = portMapping;
    portMapping?.on('mapped', (info) => this.emit('port-mapping', info));
    portMapping?.on('failed', (error) => this.emit('port-mapping-failed', error));
    this.#tcp = tcp;
    this.#tcpServer = tcp ? rendezvous.tcpStunServer : null;
    this.#responder = responder;
    this.#listener = listener;
    this.#bindAddress = options.bindAddress;
    this.identity = identity;
    this.#socket = socket;
    this.#socket6 = mux.socket6;
    this.#mux = mux;
    this.#stun = stun;
    this.#rendezvous = rendezvous;
    this.#establisher = new Establisher({
      identity, mux, bindAddress: options.bindAddress, listener, closing: this.#closing.signal, sessions: this.#sessions,
      tcpMappingFor: (signed) => {
        const kept = this.#tcp;
        return (kept && signed.has(formatAddress(kept.mapped)) ? kept : undefined)
          ?? [...this.#shortTcp.values()].find((s) => signed.has(formatAddress(s.mapped)))
          ?? (kept?.alive ? kept : undefined);
      },
      streamKeepaliveMs: () => this.#udpKeepalive?.streamKeepaliveMs(STREAM_KEEPALIVE_MS),
      relays: () => rendezvous.relays,
      trickle: (session, candidates) => rendezvous.trickle(session, candidates),
      onCandidates: (session, listener) => rendezvous.onCandidates(session, listener),
    });
    this.#recovery = new Recovery({ rendezvous, mux, closing: this.#closing.signal, events: this });
    rendezvous.on('punch', (instruction: PunchInstruction) => {
      if (instruction.resume !== undefined) {
        this.#recovery.onResumePunch(instruction);
        return;
      }
      const started = performance.now();
      this.#incomingRunning++;
      this.#establish(instruction, started).finally(() => this.#incomingRunning--).then(
        (connection) => this.emit('connection', connection),
        (error: Error) => { debug('incoming from %s failed: %s', instruction.peer, error.message); this.emit('connection-error', error); },
      );
    });
    rendezvous.on('disconnected', (reason: RendezvousError, info: DisconnectInfo) => {
      if (this.#closed) return;
      const state = this.#udpKeepalive?.state;
      if (info.retryInMs !== null) this.#keepaliveSound = !state || state.reason === 'pinned' || state.lifetime?.final === true;
      this.emit('disconnected', reason, info);
    });
    rendezvous.on('reconnected', (info: ReconnectInfo) => this.#onReconnected(info));
    this.#udpKeepalive = this.#startUdpKeepalive();
    tcp?.on('reopened', this.#onTcpReopened);
    const keepaliveMs = options.keepaliveMs ?? KEEPALIVE_MS;
    if (keepaliveMs > 0) {
      // The kept TCP connection's NAT mapping is the signed TCP candidate. TCP mappings live far
      // longer (RFC 5382 REQ-5: at least 2 h 4 min established), so a fixed interval well under
      // the STUN server's 30 s idle timeout does.
      this.#tcpKeepalive = setInterval(() => {
        const kept = this.#tcp;
        if (kept?.alive) kept.keepalive().catch((error: Error) => debug('TCP keepalive: %s', error.message));
      }, keepaliveMs);
      this.#tcpKeepalive.unref();
    }
  }

  /**
   * Keep the socket's mapping at the STUN server that proved srflx alive, so the server-reflexive
   * candidate this peer signs into intents and accepts stays true while it waits for connections;
   * and follow it when it moves anyway (keepalive.ts).
   */
  #startUdpKeepalive(): MappingKeepalive | undefined {
    const options = this.#options;
    const rendezvous = this.#rendezvous;
    const keepaliveMs = options.keepaliveMs ?? KEEPALIVE_MS;
    const stunServer = rendezvous.stunServer;
    if (!stunServer || keepaliveMs <= 0) return undefined;
    this.#keepaliveServer = stunServer;
    const keepalive = new MappingKeepalive({
      stun: this.#stun, server: stunServer, mapped: rendezvous.srflx, defaultIntervalMs: keepaliveMs,
      sizing: options.keepalive?.sizing ?? options.keepaliveMs === undefined, maxSeconds: options.keepalive?.maxSeconds,
      localAddress: options.bindAddress, registered: () => rendezvous.srflx,
      onMappingChanged: async (mapped) => {
        // While disconnected this fails at once; the next registration proves the new address anyway.
        const srflx = await rendezvous.updateSrflx();
        debug('registration moved to %s (keepalive saw %s)', srflx, mapped);
        this.emit('srflx', srflx);
      },
    });
    keepalive.on('change', (state: KeepaliveState) => this.emit('keepalive', keepaliveInfo(state)));
    keepalive.start();
    return keepalive;
  }

  /** A reopened STUN/TCP connection (new L, new mapping): later intents and accepts carry it. */
  readonly #onTcpReopened = ({ localPort, mapped }: { localPort: number; mapped: TransportAddress }): void => {
    debug('TCP mapping reopened: L %d, %s', localPort, formatAddress(mapped));
    this.emit('tcp-mapping', formatAddress(mapped));
  };

  /**
   * Registered again. The new registration proved srflx afresh (later intents and accepts sign
   * it); the keepalive starts over (and measures again) if the STUN server moved or the outage
   * came in the middle of its measurement; the TCP mapping is learnt again
   * if its connection is dead (a restarted server closed it) — in the background, reported as
   * 'tcp-mapping' like any reopened one.
   */
  #onReconnected(info: ReconnectInfo): void {
    if (this.#closed) return;
    if (!this.#keepaliveSound || !sameAddress(this.#rendezvous.stunServer, this.#udpKeepalive ? this.#keepaliveServer : null)) {
      this.#udpKeepalive?.close();
      this.#udpKeepalive = this.#startUdpKeepalive();
      // Measuring again from the default: say so, as at the start.
      if (this.#udpKeepalive) this.emit('keepalive', keepaliveInfo(this.#udpKeepalive.state));
    }
    this.emit('reconnected', info);
    void this.#relearnTcpMapping();
  }

  async #relearnTcpMapping(): Promise<void> {
    const server = this.#rendezvous.tcpStunServer;
    const current = (): boolean => !!this.#tcp?.alive && sameAddress(server, this.#tcpServer);
    if (!server || current()) return;
    const fresh = await TcpMapping.learn(server, { localAddress: this.#bindAddress, signal: this.#closing.signal })
      .catch((error: Error) => { debug('TCP mapping after reconnecting: %s', error.message); return undefined; });
    // Not learnt: a dead one still reopens on its own backoff. Learnt, but the old one came back meanwhile: keep that.
    if (!fresh) return;
    if (this.#closed || current()) {
      fresh.close();
      return;
    }
    this.#tcp?.off('reopened', this.#onTcpReopened);
    this.#tcp?.close();
    this.#tcp = fresh;
    this.#tcpServer = server;
    fresh.on('reopened', this.#onTcpReopened);
    debug('TCP mapping learnt again: L %d, %s', fresh.localPort, formatAddress(fresh.mapped));
    this.emit('tcp-mapping', formatAddress(fresh.mapped));
  }

  /** This peer's id (the text form of its Ed25519 public key): what others pass to `connect()`. */
  get peerId(): string {
    return this.identity.peerId;
  }

  /**
   * A mapping from a short STUN/TCP connection, for an intent or accept signed while the kept
   * connection is not alive; none for a UDP-only session, or where STUN over TCP never worked.
   */
  async #shortTcpMapping(transport: Transport): Promise<ShortTcpMapping | undefined> {
    const server = this.#tcpServer;
    if (!this.#tcp || !server || transport === 'udp') return undefined;
    const short = await learnShortTcpMapping(server, { localAddress: this.#bindAddress, signal: this.#closing.signal })
      .catch((error: Error) => { debug('no short TCP mapping: %s', error.message); return undefined; });
    if (!short) return undefined;
    const key = formatAddress(short.mapped);
    debug('no kept TCP connection alive: signing a short connection\'s mapping, L %d, %s', short.localPort, key);
    this.#shortTcp.set(key, short);
    setTimeout(() => { if (this.#shortTcp.get(key) === short) this.#shortTcp.delete(key); }, SHORT_TCP_MAPPING_KEEP_MS).unref();
    return short;
  }

  /** The public endpoint of the kept STUN/TCP connection's port L (the TCP mapping), or null. */
  get tcpPublicAddress(): string | null {
    return this.#tcp?.alive ? formatAddress(this.#tcp.mapped) : null;
  }

  /**
   * Whether other peers can reach this one unsolicited, as the server's dial-back at
   * registration found (and this peer saw): such a peer does not punch; the other side dials it.
   */
  get reachable(): Reachability {
    return this.#responder.reachability(this.#rendezvous.serverReachability);
  }

  /**
   * The UDP keepalive: its current interval and the mapping lifetime measured so far (null: no
   * keepalive). Emitted as 'keepalive' whenever it changes.
   */
  get keepalive(): KeepaliveInfo | null {
    return this.#udpKeepalive ? keepaliveInfo(this.#udpKeepalive.state) : null;
  }

  /** The server-reflexive UDP endpoint the rendezvous server saw (moved when the mapping moves). */
  get publicAddress(): string | null {
    return this.#rendezvous.srflx;
  }

  /** The port mapping this peer holds and signs as a `mapped` candidate, or null (none asked for, or none made). */
  get portMapping(): PortMappingInfo | null {
    return this.#portMapping?.info ?? null;
  }

  /** Why `portMapping` is null when it was asked for: the start-up attempt failed, or the mapping was lost. */
  get portMappingError(): PortMapError | null {
    return this.#portMapping && !this.#portMapping.info ? this.#portMapping.error ?? null : null;
  }

  /** Whether this peer is registered at the rendezvous server now (false between 'disconnected' and 'reconnected'). */
  get registered(): boolean {
    return this.#rendezvous.connected;
  }

  /** The same as {@link createPeer}. */
  static async create(options: PeerOptions): Promise<Peer> {
    const identity = options.identity ?? await loadOrCreateIdentity(options.keyFile ?? defaultKeyFile());
    // Large kernel buffers absorb the stream's bursts (measured in bench/connect: no drops at
    // 4 MiB where the defaults lost hundreds of packets per 64 MiB); addresses are IP literals,
    // so skip the per-send DNS lookup and its nextTick.
    const socket = dgram.createSocket({
      type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20,
      lookup: ipLiteralLookup(4),
    });
    socket.on('error', (error) => debug('udp socket: %s', error.message));
    const listening = once(socket, 'listening');
    socket.bind(0, options.bindAddress);
    await listening.catch((error: NodeJS.ErrnoException) => {
      socket.close();
      const why = error.code === 'EADDRNOTAVAIL' ? 'this host has no such address (give one of its own: ip address lists them)' : error.message;
      throw new NatpunchError('ERR_LISTEN', `peer: cannot bind UDP to ${options.bindAddress ?? 'any address'}: ${why}`, { cause: error });
    });
    const socket6 = options.ipv6 === false || (options.bindAddress && options.bindAddress !== '0.0.0.0') ? undefined : await ipv6Socket();
    const mux = new UdpMux(socket, {}, socket6);
    const stun = new StunUdpClient(socket, { listen: false, socket6 });
    mux.onStun((data, from) => stun.handle(data, { address: from.address, port: from.port, family: from.family === 6 ? 'IPv6' : 'IPv4', size: data.length }));
    const port = socket.address().port;
    const port6 = socket6?.address().port;
    /** IPv6 host candidates: this host's gatherable IPv6 addresses now, on the IPv6 socket's port. */
    const hosts6 = (): LocalCandidate[] => port6 === undefined ? [] : ipv6HostAddresses(interfaceAddresses6()).map((address) => ({ type: 'host', address: { family: 6, address, port: port6 } }));
    // Beside registration, not before it: a gateway that never answers costs nothing here.
    const portMapping = options.portMapping ? new PeerPortMapping(port, options.portMapping === true ? {} : options.portMapping) : undefined;
    let tcp: TcpMapping | undefined;
    let rendezvous: ReconnectingRendezvousClient | undefined;
    let peer: Peer | undefined;
    /** The kept TCP connection: the one learnt below, then the peer's (replaced after a reconnection). */
    const kept = (): TcpMapping | undefined => (peer ? peer.#tcp : tcp);
    const responder = new DialBackResponder(mux);
    const predictor = new PortPredictor({ bindAddress: options.bindAddress });
    // The reversal listener (an ephemeral port, not L): without it this peer is just never TCP-reachable.
    const listener = await ReversalListener.listen(responder, options.bindAddress)
      .catch((error: Error) => { debug('no reversal listener: %s', error.message); return undefined; });
    /** What this peer signs about its reachability, with its listener's endpoints on every address it has. */
    const reachability = (): SignedReachability => {
      const found = responder.reachability(rendezvous?.serverReachability ?? null);
      const reachable: ReachableTransport[] = [];
      if (found.udp) reachable.push('udp');
      if (found.tcp && listener) reachable.push('tcp');
      const nat = predictor.randomPerDestination ? { natMapping: 'random-per-destination' as const } : {};
      if (!reachable.includes('tcp')) return { reachable, tcpListen: [], ...nat };
      const tcpNow = kept();
      const publicIps = [rendezvous?.srflx, tcpNow?.alive ? formatAddress(tcpNow.mapped) : null].filter((a): a is string => !!a).map((a) => parseAddress(a).address);
      const tcpListen = [...publicIps.map((ip) => formatAddress({ family: isIPv6(ip) ? 6 : 4, address: ip, port: listener!.port })), ...privateEndpoints(listener!.port, options.bindAddress)];
      return { reachable, tcpListen, ...nat };
    };
    // Running punches, and those being decided or awaiting their punch but the one asked about.
    const gate = new IncomingGate(options.incoming, () => (peer ? peer.#incomingRunning : 0) + Math.max(0, (rendezvous?.pendingIncoming ?? 1) - 1));
    const serverList = typeof options.server === 'string' ? [options.server] : [...options.server];
    if (serverList.length === 0) throw new UsageError('createPeer: options.server names no rendezvous server');
    try {
      rendezvous = await ReconnectingRendezvousClient.connect({
        url: serverList[0]!, urls: serverList.slice(1), identity, udpSocket: socket, stunClient: stun, privateEndpoints: privateEndpoints(port, options.bindAddress),
        ...(options.report === false ? { capabilities: CAPABILITIES.filter((c) => c !== 'report') } : {}),
        ...(socket6 ? { udpSocket6: socket6 } : {}),
        accept: acceptPolicy(options, gate, (peerId, reason) => peer?.emit('refused', { peerId, reason })), signal: options.signal,
        // UDP candidates: host (IPv6 first: with both families working, the IPv6 pair is the one
        // kept, as Happy Eyeballs prefers, RFC 8305 §4 and RFC 8421 §4; and IPv6 through a
        // firewall needs no NAT mapping to stay alive), a port mapping if one was made (before
        // srflx: on a port-preserving NAT they are one endpoint, and prioritise() keeps the first
        // type it sees for it, the one the NAT promised), the proven srflx, and behind a NAT that
        // counts its ports the window the punching socket's next flows will take
        // (port-predictor.ts). Read per intent and accept, so a mapping made after registration
        // counts.
        candidates: async () => {
          const srflx = rendezvous?.srflx;
          const server = rendezvous?.stunServer;
          const mapped = portMapping?.candidate();
          const own: (string | LocalCandidate)[] = [
            ...hosts6(), ...privateEndpoints(port, options.bindAddress), ...(mapped ? [mapped] : []), ...(srflx ? [{ type: 'srflx' as const, address: parseAddress(srflx) }] : []),
          ];
          // Prediction is for IPv4 NATs: an IPv6 srflx has none to predict.
          const predicted = srflx && server && server.family === 4 ? await predictor.candidate(server, parseAddress(srflx).address) : undefined;
          return predicted ? [...own, predicted] : own;
        },
        // TCP candidates: the kept connection's mapping and this host's addresses, all on its port L;
        // with no kept connection alive, a short connection's (Hopper's scheme, tcp-mapping-short.ts).
        tcpCandidates: async (transport) => {
          const tcpNow = kept();
          const from = tcpNow?.alive ? tcpNow : peer ? await peer.#shortTcpMapping(transport) : undefined;
          if (!from) return [];
          const own: (string | LocalCandidate)[] = [...privateEndpoints(from.localPort, options.bindAddress), formatAddress(from.mapped)];
          // Behind a counting NAT the punch's connect from L is a new flow too: predicted like UDP's.
          const server = rendezvous?.stunServer;
          const predicted = server ? await predictor.candidate(server, from.mapped.address) : undefined;
          return predicted ? [...own, predicted] : own;
        },
        // Every registration, the first and each after a reconnection: its dial-back carries its own token.
        tcpListenPort: listener?.port, onHello: (token) => responder.expect(token), reachability, reconnect: options.reconnect,
      });
      // The same STUN server that proved srflx (or, where UDP is blocked, hello's), over TCP.
      const stunServer = rendezvous.tcpStunServer;
      if (stunServer) {
        tcp = await TcpMapping.learn(stunServer, { localAddress: options.bindAddress, signal: options.signal })
          .catch((error: Error) => { debug('no TCP mapping: %s', error.message); return undefined; });
      }
      debug('reachable: %o', responder.reachability(rendezvous.serverReachability));
      // What is left of the mapping's budget (it started before registration), so the first
      // intents and accepts already carry it.
      await portMapping?.settled;
      peer = new Peer(identity, socket, mux, stun, rendezvous, options, tcp, responder, listener, portMapping);
      peer.#gate = gate;
      if (portMapping?.info) debug('port mapping: %o', portMapping.info);
      peer.#predictor = predictor;
      // In the background: nothing waits on it; until it is done, offers carry no prediction.
      const udpStunServer = rendezvous.stunServer;
      if (udpStunServer?.family === 4) void predictor.classify(udpStunServer);
      return peer;
    } catch (error) {
      predictor.close();
      await portMapping?.close();
      rendezvous?.close();
      tcp?.close();
      listener?.close();
      responder.close();
      stun.close();
      mux.close();
      socket.close();
      socket6?.close();
      throw error;
    }
  }

  /** Connect to a peer by id: rendezvous, punch, encrypt. Resolves with a Connection. */
  async connect(peerId: string, options: ConnectOptions = {}): Promise<Connection> {
    if (this.#closed) throw new NatpunchError('ERR_TRANSPORT', 'peer is closed');
    const transport = options.transport ?? 'auto';
    if (transport === 'relay' && this.#rendezvous.relays.length === 0) {
      throw new NatpunchError('ERR_TRANSPORT', '--transport relay: the rendezvous server offered no relay (natpunch serve runs one unless started with --no-relay)');
    }
    if (transport === 'tcp' && !this.#tcp) {
      throw new NatpunchError('ERR_TRANSPORT', '--transport tcp: this peer has no TCP mapping: STUN over TCP to the rendezvous server\'s STUN endpoint failed');
    }
    const started = performance.now();
    const target = normalizePeerId(peerId);
    const instruction = await this.#rendezvous.connect(target, { signal: options.signal, transport }).catch((error: unknown) => {
      // The target's own refusal, relayed by the server: its reason is what the target said.
      if (error instanceof RendezvousError && error.reason === 'refused') {
        throw new RefusedError(target, error.message.replace(/^rendezvous server: /, ''), { cause: error });
      }
      if (error instanceof RendezvousError && error.reason === 'peer-not-found') {
        throw new RendezvousError('peer-not-found', `peer ${target} is not registered at the rendezvous server ${this.#rendezvous.url}: `
          + 'start natpunch listen with the same --server on the other machine first, and check the id', { ref: error.ref, cause: error });
      }
      throw error;
    });
    return this.#establish(instruction, started, options.signal);
  }

  /**
   * Follows the transport the initiator's signed intent asked for: runs the planned techniques
   * (punching or connection reversal, one per transport; both raced for 'auto'), then the Noise
   * handshake as datagrams over the chosen path (src/path/handshake.ts). The connection's path
   * manager then owns every path: the one the handshake ran on, and the race's loser when it
   * completes, as a standby. @see path-choice.ts, src/path/path-manager.ts
   */
  /** Establish (establish.ts), then hand the connection to recovery and keep it until it has settled. */
  async #establish(instruction: PunchInstruction, started: number, signal?: AbortSignal): Promise<Connection> {
    let established: Awaited<ReturnType<Establisher['establish']>>;
    try {
      established = await this.#establisher.establish(instruction, signal);
    } catch (error) {
      // Aborted by the user or by close(): not the network's verdict, so not reported.
      if (!signal?.aborted && !this.#closed) this.#report(instruction, { outcome: 'failed', ms: performance.now() - started });
      throw error;
    }
    const { connection, manager, udp, release } = established;
    connection.ms = Math.round(performance.now() - started);
    this.#report(instruction, { outcome: 'connected', path: connection.path, technique: connection.technique, ms: connection.ms });
    this.#connections.add(connection);
    this.#recovery.track(connection, manager, udp, instruction);
    connection.once('close', () => {
      this.#connections.delete(connection);
      // Like TCP's TIME-WAIT: keep the paths (and the other side's checks) answered until the
      // stream has settled, since our last ACK may still need repeating; close() waits for it.
      const settled = connection.settle().finally(() => {
        this.#settling.delete(settled);
        manager.close();
        release();
      });
      this.#settling.add(settled);
    });
    return connection;
  }

  /**
   * PeerOptions.report: statistics for the server, so a failure to send is only logged. The
   * initiator reports (its connect() is what a user waits on, and the dashboard counts each
   * connection once); the target stays silent, which keeps the server's cost per connect at one
   * more message and its answer.
   */
  #report(instruction: PunchInstruction, report: SessionReport): void {
    if (instruction.role !== 'controlling') return;
    const session = instruction.session;
    this.#rendezvous.report(session, report).then(
      (sent) => { if (sent) debug('reported session %s: %s', session, report.outcome); },
      (error: Error) => debug('report of session %s not taken: %s', session, error.message),
    );
  }

  /**
   * Close the peer: every connection is destroyed, the registration, keepalives, port mapping
   * and sockets are released. Resolves once all of it is done; calling it again does nothing.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#gate?.close();
    this.#udpKeepalive?.close();
    clearInterval(this.#tcpKeepalive);
    this.#closing.abort();
    this.#tcp?.close();
    this.#listener?.close();
    this.#responder.close();
    // A connection whose end() is still in flight delivers it first (Connection.destroy() waits
    // for 'finish', as closing a TCP socket after shutdown() still sends what is queued): the
    // socket must outlive it, or its retransmissions fail on a closed socket. Bounded: a peer
    // that never acknowledges is cut off after CLOSE_DRAIN_MS.
    const draining = [...this.#connections].filter((c) => c.writableEnded && !c.writableFinished && !c.destroyed);
    for (const c of this.#connections) c.destroy();
    if (draining.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(draining.map((c) => (c.closed ? undefined : new Promise((resolve) => c.once('close', resolve))))),
        new Promise((resolve) => { timer = setTimeout(resolve, CLOSE_DRAIN_MS); }),
      ]);
      clearTimeout(timer);
      for (const c of draining) {
        if (c.destroyed) continue;
        // The user closed the whole peer: an end that could not be delivered is not an error to throw at them.
        c.on('error', () => {});
        c.destroy(new AbortedError(`the peer closed before ${c.remotePeerId} acknowledged the end of the stream`));
      }
    }
    await Promise.all(this.#settling);
    for (const s of this.#sessions) s.close();
    this.#rendezvous.close();
    this.#predictor?.close();
    // Deleted while the socket still exists: the mapping points at its port.
    await this.#portMapping?.close();
    this.#stun.close();
    this.#mux.close();
    await Promise.all([this.#socket, ...(this.#socket6 ? [this.#socket6] : [])].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** What `peer.keepalive` and the 'keepalive' event report. */
export interface KeepaliveInfo {
  /** Current interval between STUN keepalives, ms. */
  intervalMs: number;
  /** The measured mapping lifetime so far (RFC 5780 §4.6), null before any probe finished or without sizing. */
  lifetime: {
    /** The longest idle time, s, after which the mapping still answered (null: none yet). */
    aliveSeconds: number | null;
    /** The shortest idle time, s, that killed it (null: none did). */
    expiredSeconds: number | null;
    /** Whether the measurement is over. */
    final: boolean;
  } | null;
  /** 'default', 'pinned', 'measured' or 'mapping-changed' (a keepalive saw the mapping move). */
  reason: KeepaliveState['reason'];
}

function keepaliveInfo(state: KeepaliveState): KeepaliveInfo {
  return { intervalMs: state.intervalMs, lifetime: state.lifetime && { ...state.lifetime }, reason: state.reason };
}

/** Information in the 'refused' event: who was refused, and the reason they were told. */
export interface RefusedInfo {
  /** The initiator that was refused. */
  peerId: string;
  /** What it was told, e.g. `not on the allow-list`. */
  reason: string;
}

/**
 * `allow` first, then the incoming limits, then `accept`; a refusal by the allow-list or the
 * limits is reported through `refused`. The allow-list comes first so that a stranger spends
 * nobody's tokens.
 */
function acceptPolicy(options: PeerOptions, gate: IncomingGate, refused: (peerId: string, reason: string) => void): PeerOptions['accept'] {
  const allowed = options.allow === undefined ? undefined : allowPredicate(options.allow);
  return async (peerId) => {
    if (allowed && !(await allowed(peerId))) {
      refused(peerId, 'not on the allow-list');
      return NOT_ALLOWED;
    }
    const limited = gate.check(peerId);
    if (limited !== undefined) {
      refused(peerId, limited);
      return limited;
    }
    return (await options.accept?.(peerId)) ?? true;
  };
}

/**
 * Create a peer: load (or create) its key, open its UDP socket, learn its public endpoints and
 * register at the rendezvous server `options.server`. Resolves once registered.
 *
 * @example
 * ```ts
 * const peer = await createPeer({ server: 'ws://127.0.0.1:8080/' });
 * peer.on('connection', (conn) => conn.pipe(conn)); // an echo service
 * ```
 * @throws {@link RendezvousError} when the server cannot be reached or refuses the registration
 * @throws {@link KeyFileError} when the key file cannot be read or created
 * @throws {@link AbortedError} when `options.signal` aborts
 */
export function createPeer(options: PeerOptions): Promise<Peer> {
  return Peer.create(options);
}

function sameAddress(a: TransportAddress | null, b: TransportAddress | null): boolean {
  return a === b || (!!a && !!b && a.address === b.address && a.port === b.port);
}

/**
 * The IPv6 socket: IPv6 only (IPv4 keeps its own socket and NAT mapping), on an ephemeral port,
 * created only when this host has an IPv6 address worth gathering (ipv6-host.ts) — an IPv4-only
 * host runs exactly one socket, as before. undefined when there is none, or it cannot bind.
 */
async function ipv6Socket(): Promise<dgram.Socket | undefined> {
  if (ipv6HostAddresses(interfaceAddresses6()).length === 0) return undefined;
  const socket = dgram.createSocket({
    type: 'udp6', ipv6Only: true, recvBufferSize: 4 << 20, sendBufferSize: 4 << 20,
    lookup: ipLiteralLookup(6),
  });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '::', () => { socket.off('error', reject); resolve(); });
    });
  } catch (error) {
    debug('no IPv6 socket: %s', (error as Error).message);
    socket.close();
    return undefined;
  }
  socket.on('error', (error) => debug('udp6 socket: %s', error.message));
  return socket;
}

/** Every IPv6 address of this host's interfaces, in interface order. */
function interfaceAddresses6(): string[] {
  return Object.values(os.networkInterfaces()).flat()
    .filter((i): i is os.NetworkInterfaceInfo => !!i && i.family === 'IPv6' && !i.internal)
    .map((i) => i.address);
}

/** Host candidates: every IPv4 interface address with the socket's port (RFC 8445 §5.1.1.1). */
function privateEndpoints(port: number, bindAddress?: string): string[] {
  if (bindAddress && bindAddress !== '0.0.0.0') return [formatAddress({ family: 4, address: bindAddress, port })];
  const addresses = Object.values(os.networkInterfaces()).flat()
    .filter((i): i is os.NetworkInterfaceInfo => !!i && i.family === 'IPv4' && !i.internal)
    .map((i) => formatAddress({ family: 4, address: i.address, port } satisfies TransportAddress));
  return addresses.length ? addresses : [formatAddress({ family: 4, address: '127.0.0.1', port })];
}
