/**
 * The rendezvous server: peers register over WebSocket, proving their key and their
 * server-reflexive address; an initiator's signed intent is forwarded to its target; the
 * target's signed accept turns into a `punch` for both sides. The server relays signed objects
 * but cannot forge them: each peer verifies the other's signature before sending a packet. The
 * server itself verifies only registrations (where a socket proves its key; from then on the
 * socket is the peer) and leaves the signatures inside intents, accepts and trickles to the peer
 * each is for (decision 004, "Who verifies what").
 *
 * Every per-client structure is bounded and expires: sockets (maxConnections, per address,
 * hello timeout, idle timeout), sockets not registered yet (their own smaller budget, per
 * address, fair eviction), registrations (maxPeers, live only with their socket), pending
 * sessions (per peer, per initiator-target pair, fair eviction at the target, intent expiry and
 * pendingTimeoutMs), intents (per initiator and per pair rates), punched sessions open for
 * trickled candidates (overall, per-session allowance and rate, trickle window), queued messages
 * and the send buffer. Per-socket state is kept small (shared handlers and timers, lazily made
 * sets and buckets) so that one process holds 100k peers.
 * Several nodes may share one registry and a signal bus (Redis: docs/decisions/016-redis.md):
 * a session's two peers may then sit on different nodes, and each node keeps its copy of the
 * session with the other side as a RemotePeer, reached over the bus. The limits stay per node.
 * @see docs/decisions/004-rendezvous-protocol.md, docs/decisions/015-rendezvous-limits.md
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { debuglog } from 'node:util';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { randomBytes as poolRandomBytes } from '../random-pool.js';
import { ServerSocket, type SocketEvents } from './server-socket.js';
import { NatpunchError } from '../errors.js';
import { isPeerId } from '../identity/index.js';
import { formatAddress, parseAddress } from '../wire/index.js';
import { type RendezvousErrorReason, RendezvousProtocolError, RendezvousVerifyError } from './errors.js';
import {
  type AcceptMessage, type Capability, type ClientMessage, type ConnectMessage, type IntentBody, type ParsedMessage,
  type RefuseMessage, type RegisterMessage, type ReportMessage, type ServerMessage, type Signed, type TrickleMessage, type UpdateMessage, CAPABILITIES,
  REPORTED_TECHNIQUES,
  CLIENT_MESSAGE_TYPES, PROTOCOL_VERSION, SUPPORTED_VERSIONS, encodeMessage, knownCapabilities, parseFrame,
  validate, validateAcceptBody, validateIntentBody, validateRegisterBody, validateTrickleBody, validateUpdateBody,
} from './messages.js';
import { type StartTimingOptions, RttEstimator, startDelays } from './punch-timing.js';
import { ReflexiveObserver } from './reflexive-observer.js';
import { type DialBackOptions, dialBackTcp, dialBackTimeout, dialBackUdp } from './dial-back.js';
import { type Reachability, type RegisterBody, type RelayOffer, unmappedIp } from './messages.js';
import { type PeerRecord, type Registry, InMemoryRegistry } from './registry.js';
import { type BusMessage, type RemotePeer, type SignalBus, InMemorySignalBus } from './signal-bus.js';
import { DOMAIN, bodyHash, openSigned, peekSigned } from './signed.js';
import { TokenBucket } from '../token-bucket.js';
import { RateTable } from '../rate-table.js';
import { fairShareVictim } from './fair-share.js';
import { type NatClass, natClass } from './nat-class.js';
import { publishConnect, publishError, publishRegistered, publishReport } from './server-events.js';
import { techniqueHint } from './technique-hint.js';
import { type RendezvousLimits, type RendezvousServerOptions, type RendezvousServerStats, DEFAULT_RENDEZVOUS_LIMITS } from './server-options.js';

const debug = debuglog('natpunch:rendezvous');

type ConnectionState = 'hello' | 'registered' | 'closed';

/**
 * One WebSocket. Kept small, since a node holds 100k of them: what only some sockets need
 * (session sets, the error and intent buckets, the message queue) is made when first needed and
 * dropped when empty.
 */
interface Connection {
  id: string;
  ws: WebSocket;
  address: string;
  /** The server address the WebSocket arrived at. */
  localAddress: string;
  nonce: string;
  token: string;
  state: ConnectionState;
  peerId: string | undefined;
  rtt: RttEstimator;
  pingSentAt: number | undefined;
  lastPong: number;
  messages: TokenBucket;
  errors: TokenBucket | undefined;
  intents: TokenBucket | undefined;
  /** The messages being handled, in order (undefined when none is). */
  queue: Promise<void> | undefined;
  queued: number;
  /** performance.now() by which an unregistered socket must have registered (one shared timer checks). */
  helloDeadline: number;
  /** Pending sessions this socket takes part in, as initiator or target. */
  sessions: Set<string> | undefined;
  /** The outstanding `challenge` of a registered socket (at most one; a new `refresh` replaces it). */
  challenge: { nonce: string; token: string } | undefined;
  /** Negotiated at registration (0 before). */
  version: number;
  capabilities: readonly Capability[];
  /** Punched sessions this socket takes part in, open for trickling. */
  punched: Set<string> | undefined;
  /** What registration proved about its network (for metrics; 'unknown' before). */
  nat: NatClass | 'unknown';
}

/** One peer of a session: its socket here, or on another node (reached over the signal bus). */
type Side = Connection | RemotePeer;

interface Session {
  id: string;
  /** Creation order (smaller is older), for fair eviction. */
  serial: number;
  initiator: Side;
  target: Side;
  intent: Signed;
  intentHash: string;
  /** The intent's validated body. */
  body: IntentBody;
  timer: NodeJS.Timeout;
}

/** What one peer of a punched session may still trickle, and whether it has reported the outcome. */
interface TrickleAllowance {
  messages: number;
  candidates: number;
  ended: boolean;
  /** Made on the first trickle: most sessions never trickle, and every connect keeps one per peer. */
  rate: TokenBucket | undefined;
  reported: boolean;
}

/**
 * A session after its punch: kept for trickled candidates and reports until the window closes.
 * No timer of its own: every session keeps the same window, so they expire in the order they
 * were kept, and the oldest are swept from the front of the map (#sweepPunched).
 */
interface PunchedSession {
  id: string;
  initiator: Side;
  target: Side;
  /** performance.now() at which the window closes. */
  expires: number;
  /** Made on the side's first trickle or report; only for sides with a socket here (a remote side's node keeps its own). */
  initiatorAllowance: TrickleAllowance | undefined;
  targetAllowance: TrickleAllowance | undefined;
}

/** A pending session gets at least this long for the target's answer. */
const MIN_SESSION_MS = 2_000;

/** One clock function for every bucket (a default parameter would make a closure per bucket). */
const clock = (): number => performance.now();
const NO_CAPABILITIES: readonly Capability[] = Object.freeze([]);

/**
 * One frozen array per distinct list of capabilities, shared by every connection and registry
 * record that negotiated it: a handful of lists, instead of an array per registered peer.
 */
const capabilityLists = new Map<string, readonly Capability[]>([['', NO_CAPABILITIES]]);
function sharedCapabilities(list: readonly Capability[]): readonly Capability[] {
  const key = list.join(' ');
  let shared = capabilityLists.get(key);
  if (!shared) capabilityLists.set(key, (shared = Object.freeze([...list])));
  return shared;
}

/** A reason to answer with `error {code}`; thrown inside handlers, caught in one place. */
class Refusal extends Error {
  constructor(readonly code: RendezvousErrorReason, message: string, readonly ref?: string) {
    super(message);
  }
}

export class RendezvousServer {
  /** The STUN observer this server consults; feed it from StunServer's `onBinding`. */
  readonly observer: ReflexiveObserver;
  readonly #limits: RendezvousLimits;
  readonly #registry: Registry;
  readonly #ownsRegistry: boolean;
  readonly #bus: SignalBus;
  readonly #ownsBus: boolean;
  /** Unregistrations under way: close() waits for them before the registry goes. */
  readonly #unregistering = new Set<Promise<unknown>>();
  readonly #stunAddresses: string[];
  readonly #relays: ((peerId: string, localAddress: string) => RelayOffer[]) | undefined;
  readonly #timing: StartTimingOptions;
  readonly #path: string;
  readonly #nodeId: string;
  readonly #dialBack: DialBackOptions | undefined;
  readonly #now: () => number;
  readonly #randomBytes: (size: number) => Uint8Array;
  readonly #wss: WebSocketServer;
  readonly #connections = new Map<string, Connection>();
  readonly #perAddress = new Map<string, number>();
  /** Sockets not registered yet, by hello deadline (= arrival order), and by address. */
  readonly #unregistered = new Set<Connection>();
  readonly #unregisteredByAddress = new Map<string, Set<Connection>>();
  #helloTimer: NodeJS.Timeout | undefined;
  readonly #pairRates: RateTable;
  #nextSession = 0;
  /** Every socket's events, one object for all (server-socket.ts says why). */
  readonly #events: SocketEvents<Connection>;
  readonly #sessions = new Map<string, Session>();
  readonly #punched = new Map<string, PunchedSession>();
  readonly #capabilities: Capability[];
  readonly #counters = { messages: 0, errors: 0, rateLimited: 0, punches: 0, refused: 0, trickled: 0 };
  #http: http.Server | undefined;
  #ownsHttp = false;
  #pingTimer: NodeJS.Timeout;
  #nextId = 0;
  readonly #instance = Buffer.from(poolRandomBytes(4)).toString('hex');
  #closed = false;

  private constructor(options: RendezvousServerOptions) {
    this.#limits = { ...DEFAULT_RENDEZVOUS_LIMITS, ...options.limits };
    this.#registry = options.registry ?? new InMemoryRegistry();
    this.#ownsRegistry = !options.registry;
    this.observer = options.observer ?? new ReflexiveObserver();
    const primary = options.stun?.addresses[0];
    this.#stunAddresses = options.stunAddresses ?? (primary ? [formatAddress(primary)] : []);
    this.#relays = options.relays;
    this.#timing = options.timing ?? {};
    this.#path = options.path ?? '/';
    this.#nodeId = options.nodeId ?? options.bus?.node ?? 'local';
    this.#bus = options.bus ?? new InMemorySignalBus(this.#nodeId);
    this.#ownsBus = !options.bus;
    this.#bus.listen((message) => this.#onBus(message));
    this.#dialBack = options.dialBack;
    this.#capabilities = knownCapabilities(options.capabilities ?? CAPABILITIES);
    this.#now = options.now ?? Date.now;
    this.#randomBytes = options.randomBytes ?? poolRandomBytes;
    // ws closes (1009) frames beyond maxPayload outright; frames between our own limit and that
    // get a 'too-large' error reply and the socket stays up.
    // No client tracking: the server keeps its own map, and ws's Set would be a second one.
    this.#wss = new WebSocketServer({ WebSocket: ServerSocket<Connection>, noServer: true, maxPayload: this.#limits.maxMessageBytes * 4, perMessageDeflate: false, clientTracking: false, autoPong: false });
    this.#pingTimer = setInterval(() => this.#pingAll(), this.#limits.pingIntervalMs);
    this.#pairRates = new RateTable({
      rate: this.#limits.pairIntentsPerMinute / 60, burst: this.#limits.pairIntentBurst, maxEntries: this.#limits.maxRatePairs, now: clock,
    });
    const server = this;
    this.#events = {
      error(connection, error) { debug('%s: %s', connection.id, error.message); },
      close(connection) { server.#cleanUp(connection); },
      ping(connection, data) { server.#onPing(connection, data); },
      pong(connection) { server.#onPong(connection); },
      message(connection, data, isBinary) { server.#onFrame(connection, data, isBinary); },
    };
  }

  /** A server with its own HTTP listener; plain HTTP requests get 426 Upgrade Required. */
  static async listen(options: RendezvousServerOptions & { host: string; port: number }): Promise<RendezvousServer> {
    const server = new RendezvousServer(options);
    const httpServer = http.createServer((_request, response) => {
      response.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' }).end('natpunch rendezvous: connect with WebSocket\n');
    });
    server.#attach(httpServer, true);
    try {
      await new Promise<void>((resolve, reject) => {
        httpServer.once('error', reject);
        httpServer.listen(options.port, options.host, () => {
          httpServer.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      await server.close();
      throw error;
    }
    return server;
  }

  /**
   * A server on an existing HTTP server (which may also serve /healthz and the dashboard). It
   * takes WebSocket upgrades for `path` only. `close()` detaches but leaves the HTTP server open.
   */
  static attach(httpServer: http.Server, options: RendezvousServerOptions): RendezvousServer {
    const server = new RendezvousServer(options);
    server.#attach(httpServer, false);
    return server;
  }

  /** ws://host:port/path of the listening HTTP server. */
  get url(): string {
    const address = this.#http?.address();
    if (!address || typeof address === 'string') throw new NatpunchError('ERR_RENDEZVOUS', 'rendezvous server: not listening on a TCP port');
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `ws://${host}:${address.port}${this.#path}`;
  }

  get stats(): RendezvousServerStats {
    let peers = 0;
    for (const c of this.#connections.values()) if (c.state === 'registered') peers++;
    this.#sweepPunched();
    return { connections: this.#connections.size, peers, sessions: this.#sessions.size, trickleSessions: this.#punched.size, ...this.#counters };
  }

  /**
   * Drops every socket and timer. Resolves when the HTTP listener (if this server made it) has
   * closed. Every peer is told `error shutdown` first, which the reconnecting client takes as
   * "register elsewhere, now". With `graceMs` the sockets get that long to close from their side
   * (a clean WebSocket close, 1001 Going Away) before the rest are cut; new sockets get 503 from
   * the start. Registrations are removed from the registry before this resolves.
   */
  async close(options: { graceMs?: number } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#pingTimer);
    clearTimeout(this.#helloTimer);
    const graceMs = options.graceMs ?? 0;
    const open = [...this.#connections.values()];
    for (const connection of open) {
      this.#send(connection, { type: 'error', code: 'shutdown', message: 'the rendezvous server is shutting down; register with another server' });
      if (graceMs > 0) connection.ws.close(1001, 'going away');
    }
    if (graceMs > 0 && this.#connections.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        const check = (): void => {
          if (open.some((c) => !gone(c))) return;
          clearTimeout(timer);
          resolve();
        };
        for (const connection of open) connection.ws.once('close', check);
        check();
      });
    }
    this.#http?.off('upgrade', this.#onUpgrade);
    for (const connection of [...this.#connections.values()]) {
      connection.ws.terminate();
      this.#cleanUp(connection);
    }
    for (const punched of [...this.#punched.values()]) this.#endPunched(punched);
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    if (this.#ownsHttp && this.#http) {
      const httpServer = this.#http;
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    }
    this.#pairRates.clear();
    await Promise.allSettled([...this.#unregistering]);
    if (this.#ownsBus) await this.#bus.close();
    if (this.#ownsRegistry) await this.#registry.close();
  }

  #attach(httpServer: http.Server, owns: boolean): void {
    this.#http = httpServer;
    this.#ownsHttp = owns;
    httpServer.on('upgrade', this.#onUpgrade);
  }

  readonly #onUpgrade = (request: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    let path: string;
    try {
      path = new URL(request.url ?? '/', 'http://localhost').pathname;
    } catch {
      path = '';
    }
    if (path !== this.#path) {
      // Another upgrade handler on a shared HTTP server may want it; if there is none, refuse.
      if (this.#ownsHttp || (this.#http?.listenerCount('upgrade') ?? 0) <= 1) rejectUpgrade(socket, 404, 'Not Found');
      return;
    }
    const address = request.socket.remoteAddress ?? '';
    if (!this.#admit(address)) {
      rejectUpgrade(socket, 503, 'Service Unavailable');
      publishError({ server: this, code: 'max-connections' });
      return;
    }
    const local = request.socket.localAddress ?? '';
    // Every socket of #wss is a ServerSocket: ws makes them from its `WebSocket` option.
    this.#wss.handleUpgrade(request, socket, head, (ws) => this.#onConnection(ws as ServerSocket<Connection>, address, local));
  };

  /**
   * Whether a new socket from `address` may open. Unregistered sockets have their own budget;
   * when it is full, the oldest silent socket of the address holding the most makes room, so a
   * few addresses cannot keep every registration out (fair-share.ts).
   */
  #admit(address: string): boolean {
    const limits = this.#limits;
    if (this.#closed || this.#connections.size >= limits.maxConnections) return false;
    if ((this.#perAddress.get(address) ?? 0) >= limits.maxConnectionsPerAddress) return false;
    const waiting = this.#unregisteredByAddress.get(address)?.size ?? 0;
    if (waiting >= limits.maxUnregisteredPerAddress) return false;
    if (this.#unregistered.size < limits.maxUnregistered) return true;
    const victim = fairShareVictim(this.#unregisteredByAddress.values(), waiting, (a, b) => a.helloDeadline < b.helloDeadline);
    if (!victim) return false;
    debug('%s: unregistered budget full, evicted for a socket from %s', victim.id, address);
    this.#send(victim, { type: 'error', code: 'server-full', message: `too many connections from ${victim.address} are waiting to register; register sooner after hello, or reconnect later` });
    this.#leaveUnregistered(victim);
    victim.ws.close(1013, 'too many unregistered connections');
    return true;
  }

  #enterUnregistered(connection: Connection): void {
    this.#unregistered.add(connection);
    let mine = this.#unregisteredByAddress.get(connection.address);
    if (!mine) this.#unregisteredByAddress.set(connection.address, mine = new Set());
    mine.add(connection);
    this.#armHelloTimer();
  }

  #leaveUnregistered(connection: Connection): void {
    if (!this.#unregistered.delete(connection)) return;
    const mine = this.#unregisteredByAddress.get(connection.address);
    mine?.delete(connection);
    if (mine?.size === 0) this.#unregisteredByAddress.delete(connection.address);
  }

  /** One timer for every hello deadline: set for the oldest unregistered socket (the set is in deadline order). */
  #armHelloTimer(): void {
    if (this.#helloTimer !== undefined || this.#closed) return;
    const oldest = first(this.#unregistered);
    if (!oldest) return;
    this.#helloTimer = setTimeout(() => {
      this.#helloTimer = undefined;
      const now = performance.now();
      for (const connection of this.#unregistered) {
        if (connection.helloDeadline > now) break;
        this.#leaveUnregistered(connection);
        this.#send(connection, { type: 'error', code: 'registration-timeout', message: `no registration within ${this.#limits.helloTimeoutMs} ms of hello` });
        connection.ws.close(1008, 'registration timeout');
      }
      this.#armHelloTimer();
    }, Math.max(0, oldest.helloDeadline - performance.now()));
  }

  #onConnection(ws: ServerSocket<Connection>, address: string, localAddress: string): void {
    const token = (n: number): string => Buffer.from(this.#randomBytes(n)).toString('base64url');
    const connection: Connection = {
      // The instance tag keeps ids unique across restarts of a node under one name: a stale
      // registry entry of the previous process never names a socket of this one. join() makes
      // one flat string; a template literal leaves a chain of V8 cons strings that the socket's
      // record and the registry's keep alive (~110 B per peer, heap snapshot).
      id: [this.#nodeId, this.#instance, ++this.#nextId].join(':'),
      ws,
      address,
      localAddress,
      nonce: token(16),
      token: token(16),
      state: 'hello',
      peerId: undefined,
      rtt: new RttEstimator(),
      pingSentAt: undefined,
      lastPong: performance.now(),
      messages: new TokenBucket(this.#limits.messagesPerSecond, this.#limits.messageBurst, clock),
      errors: undefined,
      intents: undefined,
      queue: undefined,
      queued: 0,
      helloDeadline: performance.now() + this.#limits.helloTimeoutMs,
      sessions: undefined,
      challenge: undefined,
      version: 0,
      capabilities: NO_CAPABILITIES,
      punched: undefined,
      nat: 'unknown',
    };
    this.#connections.set(connection.id, connection);
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
    this.#enterUnregistered(connection);
    this.observer.expect(connection.token);
    ws.attach(connection, this.#events);
    // `version` is the highest spoken: a version-1 client compares it with its own and says so.
    this.#send(connection, {
      type: 'hello', version: PROTOCOL_VERSION, versions: [...SUPPORTED_VERSIONS], capabilities: [...this.#capabilities],
      nonce: connection.nonce, token: connection.token, stun: this.#stunAddresses, serverTime: this.#now(),
    });
    this.#ping(connection);
  }

  #cleanUp(connection: Connection): void {
    if (gone(connection)) return;
    const peerId = connection.state === 'registered' ? connection.peerId : undefined;
    connection.state = 'closed';
    this.#leaveUnregistered(connection);
    this.observer.forget(connection.token);
    if (connection.challenge) this.observer.forget(connection.challenge.token);
    this.#connections.delete(connection.id);
    const count = (this.#perAddress.get(connection.address) ?? 1) - 1;
    if (count > 0) this.#perAddress.set(connection.address, count);
    else this.#perAddress.delete(connection.address);
    for (const id of [...connection.sessions ?? []]) {
      const session = this.#sessions.get(id);
      if (!session) continue;
      this.#endSession(session);
      // The initiator waits for an answer that will not come; the target's copy simply expires
      // (on another node: is dropped now).
      if (session.target === connection) {
        this.#sendTo(session.initiator, { type: 'error', code: 'peer-not-found', message: `the target of session ${id} disconnected`, ref: id });
      } else if (isRemote(session.target)) {
        this.#busSend(session.target.node, { type: 'end', session: id });
      }
      publishConnect({ server: this, outcome: 'abandoned', reason: session.target === connection ? 'target-left' : 'initiator-left', initiator: natOf(session.initiator), target: natOf(session.target) });
    }
    // Trickling needs both peers: a punched session ends with either socket.
    for (const id of [...connection.punched ?? []]) {
      const punched = this.#punched.get(id);
      if (!punched) continue;
      this.#endPunched(punched);
      const other = punched.initiator === connection ? punched.target : punched.initiator;
      if (isRemote(other)) this.#busSend(other.node, { type: 'end', session: id });
    }
    if (peerId) {
      const done = this.#registry.unregister(peerId, connection.id)
        .catch((error: unknown) => debug('unregister %s: %s', peerId, String(error)))
        .finally(() => this.#unregistering.delete(done));
      this.#unregistering.add(done);
    }
  }

  #onPong(connection: Connection): void {
    connection.lastPong = performance.now();
    if (connection.pingSentAt !== undefined) connection.rtt.sample(connection.lastPong - connection.pingSentAt);
    connection.pingSentAt = undefined;
  }

  #pingAll(): void {
    // Pairs whose bucket has refilled are as good as forgotten; so are closed trickle windows.
    this.#pairRates.sweep();
    this.#sweepPunched();
    const now = performance.now();
    for (const connection of this.#connections.values()) {
      if (now - connection.lastPong > this.#limits.idleTimeoutMs) {
        debug('%s: no pong for %d ms, dropping', connection.id, Math.round(now - connection.lastPong));
        connection.ws.terminate();
        this.#cleanUp(connection);
      } else {
        this.#ping(connection);
      }
    }
  }

  #ping(connection: Connection): void {
    if (connection.ws.readyState !== WebSocket.OPEN) return;
    connection.pingSentAt = performance.now();
    connection.ws.ping();
  }

  #send(connection: Connection, message: ServerMessage): void {
    if (this.#writable(connection)) connection.ws.send(encodeMessage(message));
  }

  /**
   * A peer's ping gets its pong (RFC 6455 §5.5.2), unless the peer leaves the server's writes
   * unread: then, as for any message, it is dropped. This is the bound ws's autoPong kept by
   * counting pongs not yet flushed (decision 015: a bad client costs a bounded amount).
   */
  #onPing(connection: Connection, data: Buffer): void {
    if (this.#writable(connection)) connection.ws.pong(data);
  }

  /** Whether the socket is open and takes more writes; a peer that does not read its socket is dropped. */
  #writable(connection: Connection): boolean {
    if (connection.ws.readyState !== WebSocket.OPEN) return false;
    if (connection.ws.bufferedAmount <= this.#limits.maxBufferedBytes) return true;
    // A peer that does not read its socket must not make the server buffer without bound.
    debug('%s: %d bytes unsent, dropping', connection.id, connection.ws.bufferedAmount);
    connection.ws.terminate();
    this.#cleanUp(connection);
    return false;
  }

  /**
   * A message for one peer of a session, wherever its socket is: here, or on another node over
   * the bus (`from`: the other peer, when the message opens a punched session there).
   */
  #sendTo(side: Side, message: ServerMessage, from?: Connection): void {
    if (!isRemote(side)) return this.#send(side, message);
    this.#busSend(side.node, { type: 'deliver', to: side.connectionId, message, ...(from ? { from: this.#describe(from) } : {}) });
  }

  /** Fire and forget: a node that is gone (or a Redis that is away) loses the message, as a closed socket would. */
  #busSend(node: string, message: BusMessage): void {
    this.#bus.send(node, message).catch((error: unknown) => debug('bus to %s: %s', node, (error as Error)?.message));
  }

  /** A socket of this node as another node sees it. */
  #describe(connection: Connection): RemotePeer {
    return {
      node: this.#nodeId, connectionId: connection.id, peerId: connection.peerId!, version: connection.version,
      capabilities: connection.capabilities, srtt: connection.rtt.srtt, ...(connection.nat === 'unknown' ? {} : { nat: connection.nat }),
    };
  }

  /**
   * Answers with `error` (echoing the request's `id`, when the message had a valid one); a socket
   * that keeps causing errors is closed (1008 Policy Violation).
   */
  #refuse(connection: Connection, code: RendezvousErrorReason, message: string, ref?: string, id?: number): void {
    this.#counters.errors++;
    publishError({ server: this, code });
    this.#send(connection, { type: 'error', code, message, ...(id === undefined ? {} : { id }), ...(ref === undefined ? {} : { ref }) });
    connection.errors ??= new TokenBucket(1, this.#limits.errorBurst, clock);
    if (!connection.errors.take() && connection.state !== 'closed') {
      debug('%s: too many protocol errors, closing', connection.id);
      connection.ws.close(1008, 'too many protocol errors');
    }
  }

  #onFrame(connection: Connection, data: RawData, isBinary: boolean): void {
    if (gone(connection)) return;
    this.#counters.messages++;
    // Parsed before the token bucket is asked (bounded by maxMessageBytes), so that even a dropped
    // request's error carries its id and the client can fail that request, not guess.
    let json: unknown;
    let message: ParsedMessage;
    try {
      if (isBinary) throw new RendezvousProtocolError('invalid', 'message: expected a text frame, got a binary frame');
      json = parseFrame(toBuffer(data), this.#limits);
    } catch (error) {
      // Never a crash: an unexpected failure of the parser is still just a bad message.
      if (error instanceof RendezvousProtocolError) this.#refuse(connection, error.reason, error.message);
      else this.#refuse(connection, 'invalid', `message: could not be parsed (${(error as Error)?.message})`);
      return;
    }
    const id = requestIdOf(json);
    if (!connection.messages.take()) {
      this.#counters.rateLimited++;
      this.#refuse(connection, 'rate-limited', `more than ${this.#limits.messagesPerSecond} messages per second; message dropped`, undefined, id);
      return;
    }
    try {
      message = validate(json, this.#limits);
    } catch (error) {
      if (error instanceof RendezvousProtocolError) this.#refuse(connection, error.reason, error.message, undefined, id);
      else this.#refuse(connection, 'invalid', `message: could not be validated (${(error as Error)?.message})`, undefined, id);
      return;
    }
    if (!CLIENT_MESSAGE_TYPES.has(message.type)) {
      this.#refuse(connection, 'unknown-type', `message.type: "${message.type}" is sent by the server, not to it`, undefined, id);
      return;
    }
    if (connection.state !== 'registered' && message.type !== 'register') {
      this.#refuse(connection, 'not-registered', `${message.type}: register first`, undefined, id);
      return;
    }
    if (connection.queued >= this.#limits.maxQueuedMessages) {
      this.#counters.rateLimited++;
      this.#refuse(connection, 'rate-limited', `${connection.queued} messages still being handled; message dropped`, undefined, id);
      return;
    }
    connection.queued++;
    const request = message as ClientMessage;
    // One socket's messages are handled in order: registration awaits the STUN proof and the registry.
    connection.queue = (connection.queue ?? Promise.resolve())
      .then(() => this.#handle(connection, request))
      .catch((error: unknown) => {
        if (error instanceof Refusal) return this.#refuse(connection, error.code, error.message, error.ref, request.id);
        if (error instanceof RendezvousProtocolError) return this.#refuse(connection, error.reason, error.message, undefined, request.id);
        if (error instanceof RendezvousVerifyError) {
          const code = error.reason === 'bad-signature' || error.reason === 'wrong-peer' ? 'bad-signature' : 'invalid';
          return this.#refuse(connection, code, error.message, undefined, request.id);
        }
        debug('%s: handler failed: %s', connection.id, (error as Error)?.stack ?? String(error));
        return this.#refuse(connection, 'invalid', 'internal error handling the message', undefined, request.id);
      })
      .finally(() => {
        // The last one handled lets go of the chain.
        if (--connection.queued === 0) connection.queue = undefined;
      });
  }

  async #handle(connection: Connection, message: ClientMessage): Promise<void> {
    if (connection.state === 'closed' || this.#closed) return;
    switch (message.type) {
      case 'register':
        return this.#register(connection, message);
      case 'connect':
        return this.#connect(connection, message).catch((error: unknown) => {
          publishConnect({ server: this, outcome: 'refused', reason: refusalCode(error), initiator: connection.nat, target: 'unknown' });
          throw error;
        });
      case 'accept':
        return this.#accept(connection, message);
      case 'refuse':
        return this.#refuseSession(connection, message);
      case 'refresh':
        return this.#refresh(connection, message.id);
      case 'update':
        return this.#update(connection, message);
      case 'trickle':
        return this.#trickle(connection, message);
      case 'report':
        return this.#report(connection, message);
    }
  }

  // --- register -----------------------------------------------------------------------------

  async #register(connection: Connection, message: RegisterMessage): Promise<void> {
    if (connection.state === 'registered') throw new Refusal('already-registered', `register: this socket is already registered as ${connection.peerId}`);
    // 0. A version hello offered; the capabilities both sides know (unknown names are ignored).
    if (!SUPPORTED_VERSIONS.includes(message.version)) {
      throw new Refusal('unsupported-version', `register.version: ${message.version}, but this server speaks ${SUPPORTED_VERSIONS.join(', ')}`);
    }
    const capabilities = sharedCapabilities(knownCapabilities(message.capabilities).filter((c) => this.#capabilities.includes(c)));
    // 1. The body names the key to verify with; verify before believing anything else in it.
    const claimed = validateRegisterBody(peekSigned(message.signed), this.#limits);
    const body = validateRegisterBody(openSigned(message.signed, DOMAIN.register, claimed.peerId), this.#limits);
    // 2. The signature covers this connection's nonce: no replaying another socket's registration.
    if (body.nonce !== connection.nonce) throw new Refusal('bad-nonce', 'register.signed.body.nonce: not the nonce of this connection\'s hello');
    // 3. A claimed server-reflexive address must be the one the STUN port saw carrying the token.
    const observed = await this.#proveReflexive(connection.token, body.srflx, 'udp', 'register');
    if (body.tcp) await this.#proveReflexive(connection.token, body.tcp, 'tcp', 'register');
    if (gone(connection)) return;
    // 4. Dial back: is the peer reachable unsolicited? (The server's word, reported, not signed.)
    const reachable = await this.#dialBackPeer(connection, body);
    if (gone(connection)) return;
    // 5. Capacity, then one live registration per peer id: the newer replaces the older.
    const existing = await this.#shared(() => this.#registry.lookup(body.peerId));
    if (!existing && (await this.#shared(() => this.#registry.size())) >= this.#limits.maxPeers) {
      this.#refuse(connection, 'server-full', `register: the server holds ${this.#limits.maxPeers} peers; try another server or later`, undefined, message.id);
      connection.ws.close(1013, 'server full');
      return;
    }
    if (gone(connection)) return;
    const previous = await this.#shared(() => this.#registry.register({
      peerId: body.peerId, connectionId: connection.id, node: this.#nodeId, srflx: body.srflx,
      privateEndpoints: body.privateEndpoints, registeredAt: this.#now(), ...(reachable ? { reachable } : {}),
      version: message.version, capabilities,
    }));
    if (gone(connection)) {
      await this.#registry.unregister(body.peerId, connection.id);
      return;
    }
    if (previous && previous.connectionId !== connection.id) {
      if (previous.node === this.#nodeId) this.#replaced(previous.connectionId, body.peerId);
      // A node that died meanwhile does not listen: the entry was stale, nothing to tell.
      else this.#busSend(previous.node, { type: 'replaced', to: previous.connectionId, peerId: body.peerId });
    }
    const relays = this.#relays?.(body.peerId, connection.localAddress);
    connection.state = 'registered';
    connection.peerId = body.peerId;
    connection.version = message.version;
    connection.capabilities = capabilities;
    this.#leaveUnregistered(connection);
    connection.nat = natClass(body, reachable);
    publishRegistered({ server: this, nat: connection.nat });
    this.observer.forget(connection.token);
    // Hello's nonce and token are spent: 100k registered sockets need not keep them.
    connection.nonce = '';
    connection.token = '';
    this.#send(connection, {
      type: 'registered', id: message.id, version: message.version, capabilities: [...capabilities], peerId: body.peerId, srflx: body.srflx,
      observedSrflx: observed ? formatAddress(observed) : null, ...(reachable ? { reachable } : {}),
      ...(relays && relays.length > 0 ? { relays } : {}),
    });
  }

  /** The older socket of a peer id that registered again (here or on another node) is closed with `replaced`. */
  #replaced(connectionId: string, peerId: string): void {
    const older = this.#connections.get(connectionId);
    if (!older || (older.peerId !== undefined && older.peerId !== peerId)) return;
    this.#send(older, { type: 'error', code: 'replaced', message: `a newer registration of ${peerId} took over` });
    older.ws.close(4000, 'replaced');
    older.peerId = undefined; // its registry entry now belongs to the newer socket
    this.#cleanUp(older);
  }

  /**
   * UDP: a Binding from the alternate address to the proven srflx (nothing to dial without a
   * proof). TCP: a connection to the WebSocket's source IP (never an address the peer names)
   * and its signed listener port. Both at once, bounded by the dial-back timeout.
   */
  async #dialBackPeer(connection: Connection, body: RegisterBody): Promise<Reachability | undefined> {
    const options = this.#dialBack;
    if (!options) return undefined;
    const ip = unmappedIp(connection.address);
    const sized = { ...options, timeoutMs: dialBackTimeout(connection.rtt.srtt, options.timeoutMs) };
    const [udp, tcp] = await Promise.all([
      body.srflx ? dialBackUdp(parseAddress(body.srflx), connection.token, sized) : false,
      body.tcpListenPort !== undefined && ip ? dialBackTcp(parseAddress(ip, body.tcpListenPort), connection.token, sized) : false,
    ]);
    debug('%s: dial-back udp %s tcp %s (within %d ms)', connection.id, udp, tcp, sized.timeoutMs);
    return { udp, tcp };
  }

  /** `claim` must be where the STUN Binding carrying `token` came from (`what`: the message, for errors). */
  async #proveReflexive(token: string, claim: string | null, transport: 'udp' | 'tcp', what: 'register' | 'update') {
    const field = transport === 'udp' ? 'srflx' : 'tcp';
    if (claim === null) return this.observer.observed(token, transport);
    const seen = await this.observer.wait(token, transport, this.#limits.srflxWaitMs);
    if (!seen) {
      throw new Refusal('srflx-unproven', `${what}.signed.body.${field}: no STUN Binding over ${transport} with this connection's token arrived within ${this.#limits.srflxWaitMs} ms`);
    }
    if (formatAddress(seen) !== claim) {
      throw new Refusal('srflx-mismatch', `${what}.signed.body.${field}: claimed ${claim}, but the STUN Binding with this connection's token came from ${formatAddress(seen)}`);
    }
    return seen;
  }

  // --- refresh / update -----------------------------------------------------------------------

  /**
   * A registered peer whose NAT mapping changed asks to prove the new one: a fresh token and
   * nonce, as in hello. One challenge per socket (a new one replaces it), expiring with the
   * observer's ttl; the token bucket bounds how often.
   */
  async #refresh(connection: Connection, id: number): Promise<void> {
    if (connection.challenge) this.observer.forget(connection.challenge.token);
    const token = (n: number): string => Buffer.from(this.#randomBytes(n)).toString('base64url');
    connection.challenge = { nonce: token(16), token: token(16) };
    this.observer.expect(connection.challenge.token);
    this.#send(connection, { type: 'challenge', id, ...connection.challenge });
  }

  /** The signed move of a registration to a new server-reflexive address, proven like `register` step 3. */
  async #update(connection: Connection, message: UpdateMessage): Promise<void> {
    // 1. Signed by this socket's peer, over the outstanding challenge's nonce (single use).
    const body = validateUpdateBody(openSigned(message.signed, DOMAIN.update, connection.peerId!), this.#limits);
    if (body.peerId !== connection.peerId) throw new Refusal('bad-signature', `update.signed.body.peerId: ${body.peerId} is not the registered peer of this socket`);
    // Any signed update uses the challenge up, right or wrong.
    const challenge = connection.challenge;
    connection.challenge = undefined;
    if (!challenge || body.nonce !== challenge.nonce) {
      if (challenge) this.observer.forget(challenge.token);
      throw new Refusal('bad-nonce', 'update.signed.body.nonce: not the nonce of this socket\'s outstanding challenge (send refresh first)');
    }
    try {
      // 2. The new address is the one the STUN port saw carrying the challenge's token.
      await this.#proveReflexive(challenge.token, body.srflx, 'udp', 'update');
    } finally {
      this.observer.forget(challenge.token);
    }
    // 3. The registration, if this socket still holds it, now names the new address.
    const record = await this.#registry.lookup(body.peerId);
    if (gone(connection) || record?.connectionId !== connection.id) return;
    await this.#registry.register({ ...record, srflx: body.srflx });
    this.#send(connection, { type: 'updated', id: message.id, srflx: body.srflx });
  }

  // --- connect --------------------------------------------------------------------------------

  async #connect(connection: Connection, message: ConnectMessage): Promise<void> {
    const from = connection.peerId!;
    // 1. The intent must name this socket's peer as its sender: nobody sends intents in another's
    // name. Its signature is for the target, which verifies it (and refuses, with the reason, an
    // intent that does not verify): this socket proved its key at registration, so verifying
    // again here would only spend the server's CPU on a check the peer does anyway (decision 004).
    const intent = validateIntentBody(peekSigned(message.intent), this.#limits, 'connect.intent.body');
    const ref = intent.session;
    if (intent.from !== from) throw new Refusal('bad-intent', `connect.intent.body.from: ${intent.from} is not the registered peer of this socket`, ref);
    if (intent.to === from) throw new Refusal('bad-intent', 'connect.intent.body.to: a peer cannot connect to itself', ref);
    this.#checkExpiry(intent, ref);
    // 2. Bounded pending state, and this initiator's rates (overall, then toward this target).
    if (this.#sessions.has(ref)) throw new Refusal('session-in-use', `connect.intent.body.session: ${ref} is already pending`, ref);
    const mine = connection.sessions?.size ?? 0;
    if (mine >= this.#limits.maxPendingIntents || this.#sessions.size >= this.#limits.maxSessions) {
      throw new Refusal('too-many-pending', `connect: ${mine} sessions already pending (at most ${this.#limits.maxPendingIntents})`, ref);
    }
    this.#takeIntent(connection, intent.to, ref);
    // 3. The target must be registered (here, or on another node sharing the registry), and not flooded.
    const record = await this.#shared(() => this.#registry.lookup(intent.to));
    const target = record && this.#sideOf(record);
    if (gone(connection)) return;
    if (!target || (!isRemote(target) && target.state !== 'registered')) {
      // The schema checked only the id's spelling: say so if it cannot be anyone's (a typo).
      const typo = isPeerId(intent.to) ? '' : ' (and cannot be: its checksum does not match, the id has a typo)';
      throw new Refusal('peer-not-found', `connect: ${intent.to} is not registered with this server${typo}`, ref);
    }
    // Both peers read each other's signed bodies: only peers on one version can meet.
    if (target.version !== connection.version) {
      throw new Refusal('unsupported-version', `connect: ${intent.to} registered with protocol version ${target.version}, this peer with ${connection.version}`, ref);
    }
    // 4. Fair to initiators: one pair holds few sessions, and a full target makes room for a
    // newcomer. A target on another node: that node counts its pending sessions (#onRemoteIncoming).
    const held = this.#pendingBetween(connection, intent.to);
    if (held.length >= this.#limits.maxPendingPerPair) {
      throw new Refusal('too-many-pending', `connect: this peer already has ${held.length} session(s) pending with ${intent.to} (at most ${this.#limits.maxPendingPerPair}); wait for its answer`, ref);
    }
    if (!isRemote(target) && (target.sessions?.size ?? 0) >= this.#limits.maxPendingIntents) this.#makeRoom(target, held.length, intent.to, ref);
    if (this.#sessions.has(ref)) throw new Refusal('session-in-use', `connect.intent.body.session: ${ref} is already pending`, ref);
    // At least a moment for the target to answer, even when the initiator's clock runs behind;
    // at most pendingTimeoutMs, so slots held for a target that never answers free up soon.
    const lifetime = Math.min(Math.max(intent.expires - this.#now(), MIN_SESSION_MS), this.#limits.maxIntentLifetimeMs, this.#limits.pendingTimeoutMs);
    const session: Session = {
      id: ref, serial: ++this.#nextSession, initiator: connection, target, intent: message.intent, intentHash: bodyHash(message.intent), body: intent,
      timer: setTimeout(() => {
        this.#endSession(session);
        publishConnect({ server: this, outcome: 'timed-out', reason: 'none', initiator: connection.nat, target: natOf(target) });
        this.#send(connection, { type: 'error', code: 'timeout', message: `${intent.to} did not answer before the intent expired`, ref });
      }, lifetime),
    };
    this.#sessions.set(ref, session);
    (connection.sessions ??= new Set()).add(ref);
    if (!isRemote(target)) {
      (target.sessions ??= new Set()).add(ref);
      this.#send(target, { type: 'incoming', intent: message.intent });
      return;
    }
    const delivered = await this.#bus.send(target.node, {
      type: 'incoming', to: target.connectionId, peerId: target.peerId, session: ref, initiator: this.#describe(connection), intent: message.intent, lifetimeMs: lifetime,
    }).catch((error: unknown) => {
      debug('bus to %s: %s', target.node, (error as Error)?.message);
      return false;
    });
    if (!delivered && this.#sessions.get(ref) === session) {
      this.#endSession(session);
      throw new Refusal('peer-not-found', `connect: ${intent.to} is registered with node ${target.node}, which does not answer (it may have stopped: its peers register elsewhere within seconds); try again`, ref);
    }
  }

  /**
   * A registry call; a failure of the store itself (Redis unreachable, a command timing out) is
   * refused as 'server-full', which clients retry (elsewhere, when given several servers), not
   * as the generic 'invalid' they would take for their own fault and give up on.
   */
  async #shared<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      debug('registry: %s', (error as Error)?.message);
      throw new Refusal('server-full', `the rendezvous registry is unavailable (${(error as Error)?.message}); try again or another server`);
    }
  }

  /** The socket a registry record names, or the peer on another node; undefined for a record of this node whose socket is gone. */
  #sideOf(record: PeerRecord): Side | undefined {
    if (record.node === this.#nodeId) return this.#connections.get(record.connectionId);
    return {
      node: record.node, connectionId: record.connectionId, peerId: record.peerId, version: record.version ?? 0,
      capabilities: knownCapabilities(record.capabilities ?? []), srtt: undefined,
    };
  }

  /** A token from the initiator's bucket, then from its pair's with `to` (rate-limited otherwise). */
  #takeIntent(connection: Connection, to: string, ref: string): void {
    const limits = this.#limits;
    connection.intents ??= new TokenBucket(limits.intentsPerSecond, limits.intentBurst, clock);
    if (!connection.intents.take()) {
      this.#counters.rateLimited++;
      throw new Refusal('rate-limited', `connect: more than ${limits.intentsPerSecond} intents per second from this peer (burst ${limits.intentBurst}); intent dropped, try again later`, ref);
    }
    const key = `${connection.peerId} ${to}`;
    const pair = this.#pairRates.take(key);
    if (pair === 'ok') return;
    this.#counters.rateLimited++;
    if (pair === 'full') throw new Refusal('rate-limited', 'connect: the server is rate-limiting too many initiator-target pairs at once; try again in a minute', ref);
    const waitS = Math.ceil(this.#pairRates.waitMs(key) / 1000);
    throw new Refusal('rate-limited', `connect: more than ${limits.pairIntentsPerMinute} intents per minute to ${to} (burst ${limits.pairIntentBurst}); try again in ${waitS} s`, ref);
  }

  /** The sessions pending from `initiator` to the peer `to` (here or on another node), oldest first. */
  #pendingBetween(initiator: Connection, to: string): Session[] {
    const found: Session[] = [];
    for (const id of initiator.sessions ?? []) {
      const session = this.#sessions.get(id);
      if (session?.initiator === initiator && session.target.peerId === to) found.push(session);
    }
    return found;
  }

  /**
   * `target`'s pending slots are full: the oldest session of the initiator holding the most of
   * them ends (its initiator is told), if that initiator holds more than this one's `held`;
   * otherwise the new intent is refused. See fair-share.ts.
   */
  #makeRoom(target: Connection, held: number, to: string, ref: string): void {
    // Keyed by peer id: an initiator on another node is a new RemotePeer object per intent.
    const byInitiator = new Map<string | undefined, Session[]>();
    for (const id of target.sessions ?? []) {
      const session = this.#sessions.get(id);
      if (session?.target !== target) continue;
      const list = byInitiator.get(session.initiator.peerId);
      if (list) list.push(session);
      else byInitiator.set(session.initiator.peerId, [session]);
    }
    // Between initiators holding as many, the one that sent this target the most intents lately
    // (fewest tokens left in its pair's bucket) goes first: repeat offenders evict each other
    // rather than a newcomer's session; then the older session.
    const left = (s: Session): number => this.#pairRates.tokens(`${s.initiator.peerId} ${s.target.peerId}`);
    const victim = fairShareVictim(byInitiator.values(), held, (a, b) => left(a) < left(b) || (left(a) === left(b) && a.serial < b.serial));
    if (!victim) throw new Refusal('too-many-pending', `connect: ${to} has ${target.sessions?.size ?? 0} connection requests pending (at most ${this.#limits.maxPendingIntents}); try again later`, ref);
    this.#endSession(victim);
    this.#sendTo(victim.initiator, {
      type: 'error', code: 'too-many-pending', ref: victim.id,
      message: `connect: ${to} has too many connection requests pending and a newer initiator took this one's place; try again later`,
    });
  }

  #checkExpiry(intent: IntentBody, ref: string): void {
    const now = this.#now();
    const { clockToleranceMs: tolerance, maxIntentLifetimeMs: lifetime } = this.#limits;
    if (intent.expires + tolerance <= now) {
      throw new Refusal('expired', `connect.intent.body.expires: ${intent.expires} has passed (server time ${now}, tolerance ${tolerance} ms)`, ref);
    }
    if (intent.expires - now > lifetime + tolerance) {
      throw new Refusal('expired', `connect.intent.body.expires: ${intent.expires - now} ms ahead, at most ${lifetime + tolerance}`, ref);
    }
  }

  #endSession(session: Session): void {
    clearTimeout(session.timer);
    this.#sessions.delete(session.id);
    if (!isRemote(session.initiator)) session.initiator.sessions = without(session.initiator.sessions, session.id);
    if (!isRemote(session.target)) session.target.sessions = without(session.target.sessions, session.id);
  }

  // --- accept / refuse ------------------------------------------------------------------------

  #ownSession(connection: Connection, id: string, what: string): Session {
    const session = this.#sessions.get(id);
    if (!session || session.target !== connection) throw new Refusal('unknown-session', `${what}: no pending session ${id} for this peer`, id);
    return session;
  }

  async #accept(connection: Connection, message: AcceptMessage): Promise<void> {
    // The accept must come from this socket's peer (the target) and answer exactly the intent
    // forwarded. Its signature is for the initiator, which verifies it against the target it chose.
    const accept = validateAcceptBody(peekSigned(message.accept), this.#limits, 'accept.accept.body');
    const session = this.#ownSession(connection, accept.session, 'accept');
    if (accept.intentHash !== session.intentHash) {
      throw new Refusal('bad-intent', `accept.accept.body.intentHash: does not match the intent of session ${session.id}`, session.id);
    }
    this.#endSession(session);
    const { initiator, target } = session;
    const key = Buffer.from(this.#randomBytes(32)).toString('base64');
    // An initiator on another node: its socket's RTT as its node measured it when the intent left.
    const [initiatorDelay, targetDelay] = startDelays(srttOf(initiator), srttOf(target), this.#timing);
    const common = { type: 'punch', session: session.id, intent: session.intent, accept: message.accept, key } as const;
    const punches = [
      { to: initiator, delay: initiatorDelay, message: { ...common, peer: target.peerId!, role: 'controlling' as const } },
      { to: target, delay: targetDelay, message: { ...common, peer: initiator.peerId!, role: 'controlled' as const } },
    ].sort((a, b) => a.delay - b.delay);
    // Sending a punch (serialising two signed bodies) takes ms: the one told to wait less goes
    // first, and the other's delay counts from when it is sent.
    const decided = performance.now();
    for (const { to, delay, message } of punches) {
      this.#sendTo(to, { ...message, startInMs: Math.max(0, delay - Math.round(performance.now() - decided)) }, connection);
    }
    this.#counters.punches++;
    publishConnect({
      server: this, outcome: 'accepted', reason: 'none', initiator: natOf(initiator), target: natOf(target),
      transport: session.body.transport ?? 'udp', technique: techniqueHint(session.body, accept),
    });
    this.#keepPunched(session.id, initiator, target);
  }

  // --- trickle ----------------------------------------------------------------------------------

  /**
   * Keeps a punched session for trickled candidates and the peers' reports until the window
   * closes or either socket does. When maxPunchedSessions are kept already the session is not:
   * its trickles and reports get `unknown-session` (a lost optimisation, never a lost connection).
   */
  #keepPunched(id: string, initiator: Side, target: Side): void {
    const now = performance.now();
    this.#sweepPunched(now);
    const local = [initiator, target].filter((side): side is Connection => !isRemote(side));
    if (this.#punched.size >= this.#limits.maxPunchedSessions || local.some(gone) || this.#punched.has(id)) return;
    this.#punched.set(id, { id, initiator, target, expires: now + this.#limits.trickleWindowMs, initiatorAllowance: undefined, targetAllowance: undefined });
    for (const c of local) (c.punched ??= new Set()).add(id);
  }

  /** Ends the punched sessions whose window has closed: the oldest, at the front of the map (insertion order). */
  #sweepPunched(now = performance.now()): void {
    for (const punched of this.#punched.values()) {
      if (punched.expires > now) return;
      this.#endPunched(punched);
    }
  }

  /** The punched session `ref` if its window is open, and what `connection` (one of its peers, with a socket here) may still send in it. */
  #punchedFor(connection: Connection, ref: string): { punched: PunchedSession; allowance: TrickleAllowance } | undefined {
    const punched = this.#punched.get(ref);
    if (!punched) return undefined;
    if (punched.expires <= performance.now()) {
      this.#endPunched(punched);
      return undefined;
    }
    const fresh = (): TrickleAllowance => ({ messages: 0, candidates: 0, ended: false, rate: undefined, reported: false });
    if (punched.initiator === connection) return { punched, allowance: punched.initiatorAllowance ??= fresh() };
    if (punched.target === connection) return { punched, allowance: punched.targetAllowance ??= fresh() };
    return undefined;
  }

  #endPunched(punched: PunchedSession): void {
    this.#punched.delete(punched.id);
    if (!isRemote(punched.initiator)) punched.initiator.punched = without(punched.initiator.punched, punched.id);
    if (!isRemote(punched.target)) punched.target.punched = without(punched.target.punched, punched.id);
  }

  /**
   * Candidates one peer of a punched session found late, for the other peer only. The steps
   * follow RFC 8838 §8-9 where they apply to a relaying server, cheapest checks first.
   */
  async #trickle(connection: Connection, message: TrickleMessage): Promise<void> {
    const ref = message.session;
    // 1. A session this socket was punched into, still within its trickle window.
    const kept = this.#punchedFor(connection, ref);
    if (!kept) throw new Refusal('unknown-session', `trickle: no punched session ${ref} of this peer within the last ${this.#limits.trickleWindowMs} ms`, ref);
    const { punched, allowance } = kept;
    const other = punched.initiator === connection ? punched.target : punched.initiator;
    // 2. Both peers negotiated trickle.
    if (!connection.capabilities.includes('trickle')) throw new Refusal('unsupported-capability', 'trickle: this peer did not negotiate the \'trickle\' capability', ref);
    if (!other.capabilities.includes('trickle')) throw new Refusal('unsupported-capability', `trickle: ${other.peerId} did not negotiate the 'trickle' capability`, ref);
    // 3. The session's rate, before anything is parsed or forwarded.
    allowance.rate ??= new TokenBucket(this.#limits.trickleMessagesPerSecond, this.#limits.trickleBurst);
    if (!allowance.rate.take()) {
      this.#counters.rateLimited++;
      throw new Refusal('rate-limited', `trickle: more than ${this.#limits.trickleMessagesPerSecond} per second for session ${ref}; message dropped`, ref);
    }
    // 4. About this session; the signature (this socket's peer's) is the receiver's to verify.
    const body = validateTrickleBody(peekSigned(message.signed), this.#limits, 'trickle.signed.body');
    if (body.session !== ref) throw new Refusal('invalid', `trickle.signed.body.session: ${body.session}, but the message is for ${ref}`, ref);
    // 5. Within the allowance: messages, candidates, nothing after end-of-candidates.
    if (allowance.ended) throw new Refusal('trickle-limit', `trickle: end-of-candidates was already sent for session ${ref}`, ref);
    if (allowance.messages + 1 > this.#limits.maxTrickleMessages || allowance.candidates + body.candidates.length > this.#limits.maxTrickleCandidates) {
      throw new Refusal('trickle-limit', `trickle: session ${ref} allows ${this.#limits.maxTrickleMessages} messages and ${this.#limits.maxTrickleCandidates} candidates per peer; ${allowance.messages} and ${allowance.candidates} used, ${body.candidates.length} more sent`, ref);
    }
    allowance.messages++;
    allowance.candidates += body.candidates.length;
    allowance.ended = body.end === true;
    // 6. To the other peer of the session only, and done.
    this.#sendTo(other, { type: 'candidates', session: ref, signed: message.signed });
    this.#send(connection, { type: 'ack', id: message.id });
    this.#counters.trickled++;
  }

  // --- report -----------------------------------------------------------------------------------

  /**
   * A peer's word on how a session it was punched into ended: statistics only (the dashboard's
   * success by technique), never acted on. Bounded like a trickle: a session of this socket
   * within its window, once per peer, and the label values from closed lists.
   */
  #report(connection: Connection, message: ReportMessage): void {
    const ref = message.session;
    const kept = this.#punchedFor(connection, ref);
    if (!kept) throw new Refusal('unknown-session', `report: no punched session ${ref} of this peer within the last ${this.#limits.trickleWindowMs} ms`, ref);
    const { punched, allowance } = kept;
    if (!connection.capabilities.includes('report')) throw new Refusal('unsupported-capability', 'report: this peer did not negotiate the \'report\' capability', ref);
    if (allowance.reported) throw new Refusal('invalid', `report: session ${ref} was already reported by this peer`, ref);
    allowance.reported = true;
    const connected = message.outcome === 'connected';
    const technique = !connected ? 'none' : REPORTED_TECHNIQUES.includes(message.technique!) ? message.technique! : 'other';
    publishReport({
      server: this, role: punched.initiator === connection ? 'initiator' : 'target', outcome: message.outcome,
      path: connected ? message.path! : 'none', technique, ms: message.ms, initiator: natOf(punched.initiator), target: natOf(punched.target),
    });
    this.#send(connection, { type: 'ack', id: message.id });
  }

  async #refuseSession(connection: Connection, message: RefuseMessage): Promise<void> {
    const session = this.#ownSession(connection, message.session, 'refuse');
    this.#endSession(session);
    this.#counters.refused++;
    publishConnect({ server: this, outcome: 'refused', reason: 'peer', initiator: natOf(session.initiator), target: natOf(session.target) });
    this.#sendTo(session.initiator, { type: 'error', code: 'refused', message: message.reason || 'the peer refused', ref: session.id });
  }

  // --- other nodes ------------------------------------------------------------------------------

  /** A message from another node sharing the registry. Nodes trust each other; peers verify what they get. */
  #onBus(message: BusMessage): void {
    if (this.#closed) return;
    switch (message.type) {
      case 'incoming':
        return this.#onRemoteIncoming(message);
      case 'deliver':
        return this.#onDeliver(message);
      case 'end': {
        const session = this.#sessions.get(message.session);
        if (session && (isRemote(session.initiator) || isRemote(session.target))) this.#endSession(session);
        const punched = this.#punched.get(message.session);
        if (punched && (isRemote(punched.initiator) || isRemote(punched.target))) this.#endPunched(punched);
        return;
      }
      case 'replaced':
        return this.#replaced(message.to, message.peerId);
    }
  }

  /**
   * An intent for a socket of this node from an initiator on another: this node keeps its own
   * copy of the pending session (so the target's accept or refuse finds it, and the target's
   * pending sessions are counted here) and forwards `incoming`. Its timer only drops the copy:
   * the initiator's node tells the initiator about the timeout.
   */
  #onRemoteIncoming(message: BusMessage & { type: 'incoming' }): void {
    const { session: ref, initiator } = message;
    const answer = (code: RendezvousErrorReason, text: string): void => {
      this.#sendTo(initiator, { type: 'error', code, message: text, ref });
    };
    const target = this.#connections.get(message.to);
    if (!target || target.state !== 'registered' || target.peerId !== message.peerId) return answer('peer-not-found', `connect: ${message.peerId} is no longer registered`);
    if (this.#sessions.has(ref)) return answer('session-in-use', `connect.intent.body.session: ${ref} is already pending`);
    // The same fairness as for initiators of this node (#onConnect, step 4); the initiator's
    // node has applied its rates and its own per-pair count already.
    if (this.#sessions.size >= this.#limits.maxSessions) return answer('too-many-pending', 'connect: the server has too many connection requests pending; try again later');
    let held = 0;
    for (const id of target.sessions ?? []) if (this.#sessions.get(id)?.initiator.peerId === initiator.peerId) held++;
    if (held >= this.#limits.maxPendingPerPair) return answer('too-many-pending', `connect: this peer already has ${held} session(s) pending with ${message.peerId} (at most ${this.#limits.maxPendingPerPair}); wait for its answer`);
    if ((target.sessions?.size ?? 0) >= this.#limits.maxPendingIntents) {
      try {
        this.#makeRoom(target, held, message.peerId, ref);
      } catch (error) {
        if (error instanceof Refusal) return answer(error.code, error.message);
        throw error;
      }
    }
    // The initiator's node verified the signature (nodes trust each other); the body is read
    // again here for what this node records of the session (its transport, for the metrics).
    let body: IntentBody;
    try {
      body = validateIntentBody(peekSigned(message.intent), this.#limits, 'connect.intent.body');
    } catch (error) {
      return answer('bad-intent', (error as Error).message);
    }
    const session: Session = {
      id: ref, serial: ++this.#nextSession, initiator, target, intent: message.intent, intentHash: bodyHash(message.intent), body,
      timer: setTimeout(() => this.#endSession(session), Math.min(message.lifetimeMs, this.#limits.maxIntentLifetimeMs, this.#limits.pendingTimeoutMs)),
    };
    this.#sessions.set(ref, session);
    (target.sessions ??= new Set()).add(ref);
    this.#send(target, { type: 'incoming', intent: message.intent });
  }

  /**
   * A server message another node sends one of this node's sockets: the answer to a session
   * pending here (a punch, a refusal, an error) ends it first; a punch keeps the session open for
   * trickling with `from`, the other peer.
   */
  #onDeliver(delivery: BusMessage & { type: 'deliver' }): void {
    const connection = this.#connections.get(delivery.to);
    const message = delivery.message;
    const ref = message.type === 'punch' ? message.session : message.type === 'error' ? message.ref : undefined;
    const session = ref === undefined ? undefined : this.#sessions.get(ref);
    if (session && connection && (session.initiator === connection || session.target === connection)) this.#endSession(session);
    if (!connection || gone(connection)) return;
    this.#send(connection, message);
    if (message.type === 'punch' && delivery.from) {
      if (message.role === 'controlling') this.#keepPunched(message.session, connection, delivery.from);
      else this.#keepPunched(message.session, delivery.from, connection);
    }
  }
}

/** The `id` of a frame's JSON when it is a valid request id (for answering even a message that fails validation). */
function requestIdOf(json: unknown): number | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const id = (json as Record<string, unknown>)['id'];
  return typeof id === 'number' && Number.isSafeInteger(id) && id >= 1 ? id : undefined;
}

/** `set` without `id`; undefined once empty (an empty Set still costs a socket memory). */
function without(set: Set<string> | undefined, id: string): Set<string> | undefined {
  set?.delete(id);
  return set?.size ? set : undefined;
}

function first<T>(set: Set<T>): T | undefined {
  for (const member of set) return member;
  return undefined;
}

/** Whether a session's peer sits on another node. */
function isRemote(side: Side): side is RemotePeer {
  return 'node' in side;
}

function srttOf(side: Side): number | undefined {
  return isRemote(side) ? side.srtt : side.rtt.srtt;
}

/** What a session's peer's registration proved about its network (for metrics). */
function natOf(side: Side): NatClass | 'unknown' {
  return side.nat ?? 'unknown';
}

/** The `error` code a failed `connect` is answered with (as #onFrame's catch chooses it). */
function refusalCode(error: unknown): string {
  if (error instanceof Refusal) return error.code;
  if (error instanceof RendezvousProtocolError) return error.reason;
  if (error instanceof RendezvousVerifyError) return error.reason === 'bad-signature' || error.reason === 'wrong-peer' ? 'bad-signature' : 'invalid';
  return 'invalid';
}

/** Whether the socket closed meanwhile (a function, so TypeScript does not narrow across awaits). */
function gone(connection: Connection): boolean {
  return connection.state === 'closed';
}

function toBuffer(data: RawData): Buffer {
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.isBuffer(data) ? data : Buffer.from(data);
}

function rejectUpgrade(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
}
