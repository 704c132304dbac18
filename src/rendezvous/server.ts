/**
 * The rendezvous server: peers register over WebSocket, proving their key and their
 * server-reflexive address; an initiator's signed intent is forwarded to its target; the
 * target's signed accept turns into a `punch` for both sides. The server relays signed objects
 * but cannot forge them: each peer verifies the other's signature before sending a packet.
 *
 * Every per-client structure is bounded and expires: sockets (maxConnections, per address,
 * hello timeout, idle timeout), registrations (maxPeers, live only with their socket), pending
 * sessions (per peer, overall, intent expiry), punched sessions open for trickled candidates
 * (overall, per-session allowance and rate, trickle window), queued messages and the send buffer.
 * @see docs/decisions/004-rendezvous-protocol.md
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { debuglog } from 'node:util';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { NatpunchError } from '../errors.js';
import type { StunServer } from '../stun/server.js';
import { formatAddress, parseAddress } from '../wire/index.js';
import { type RendezvousErrorReason, RendezvousProtocolError, RendezvousVerifyError } from './errors.js';
import {
  type AcceptMessage, type Capability, type ClientMessage, type ConnectMessage, type IntentBody, type MessageLimits, type ParsedMessage,
  type RefuseMessage, type RegisterMessage, type ServerMessage, type Signed, type TrickleMessage, type UpdateMessage, CAPABILITIES,
  CLIENT_MESSAGE_TYPES, DEFAULT_MESSAGE_LIMITS, PROTOCOL_VERSION, SUPPORTED_VERSIONS, encodeMessage, knownCapabilities, parseFrame,
  validate, validateAcceptBody, validateIntentBody, validateRegisterBody, validateTrickleBody, validateUpdateBody,
} from './messages.js';
import { type StartTimingOptions, RttEstimator, startDelays } from './punch-timing.js';
import { ReflexiveObserver } from './reflexive-observer.js';
import { type DialBackOptions, dialBackTcp, dialBackTimeout, dialBackUdp } from './dial-back.js';
import { type Reachability, type RegisterBody, type RelayOffer, unmappedIp } from './messages.js';
import { type Registry, InMemoryRegistry } from './registry.js';
import { DOMAIN, bodyHash, openSigned, peekSigned } from './signed.js';
import { TokenBucket } from '../token-bucket.js';
import { DEFAULT_TRICKLE_LIMITS } from './trickle.js';
import { type NatClass, natClass } from './nat-class.js';
import { publishConnect, publishError, publishRegistered } from './server-events.js';
import { techniqueHint } from './technique-hint.js';

const debug = debuglog('natpunch:rendezvous');

export interface RendezvousLimits extends MessageLimits {
  /** Open WebSockets, registered or not (default 10000). Beyond it the upgrade gets 503. */
  maxConnections: number;
  /** Open WebSockets from one IP address (default 256: many peers may share one NAT). */
  maxConnectionsPerAddress: number;
  /** Registered peers (default 10000). */
  maxPeers: number;
  /** Sessions one peer may have pending, as initiator or as target (default 8). */
  maxPendingIntents: number;
  /** Sessions pending on the whole server (default 10000). */
  maxSessions: number;
  /** Token bucket per socket: sustained messages per second (default 20) and burst (default 40). */
  messagesPerSecond: number;
  messageBurst: number;
  /** Protocol errors a socket may cause in a burst (default 20, refilled 1/s) before it is closed. */
  errorBurst: number;
  /** A socket that has not registered this long after hello is closed (default 10 s). */
  helloTimeoutMs: number;
  /** WebSocket ping interval (default 15 s); the pongs give the RTT used for punch timing. */
  pingIntervalMs: number;
  /** A socket that has answered no ping for this long is dropped (default 45 s). */
  idleTimeoutMs: number;
  /** How long a registration claiming a server-reflexive address waits for the STUN proof (default 2 s). */
  srflxWaitMs: number;
  /** Longest intent lifetime accepted (default 60 s). */
  maxIntentLifetimeMs: number;
  /** How far a peer's clock may be off when judging an intent's expiry (default 30 s). */
  clockToleranceMs: number;
  /** Messages of one socket waiting to be handled (default 16). */
  maxQueuedMessages: number;
  /** Unsent bytes buffered for one socket before it counts as stalled and is dropped (default 1 MiB). */
  maxBufferedBytes: number;
  /** How long after its punch a session forwards trickled candidates (default 30 s). */
  trickleWindowMs: number;
  /** `trickle` messages one peer may send per session (default 8). */
  maxTrickleMessages: number;
  /** Candidates one peer may trickle per session, all messages together (default 32). */
  maxTrickleCandidates: number;
  /** Token bucket per peer per session for `trickle`: sustained per second (default 2) and burst (default 4). */
  trickleMessagesPerSecond: number;
  trickleBurst: number;
}

export const DEFAULT_RENDEZVOUS_LIMITS: Readonly<RendezvousLimits> = Object.freeze({
  ...DEFAULT_MESSAGE_LIMITS,
  maxConnections: 10_000,
  maxConnectionsPerAddress: 256,
  maxPeers: 10_000,
  maxPendingIntents: 8,
  maxSessions: 10_000,
  messagesPerSecond: 20,
  messageBurst: 40,
  errorBurst: 20,
  helloTimeoutMs: 10_000,
  pingIntervalMs: 15_000,
  idleTimeoutMs: 45_000,
  srflxWaitMs: 2_000,
  maxIntentLifetimeMs: 60_000,
  clockToleranceMs: 30_000,
  maxQueuedMessages: 16,
  maxBufferedBytes: 1 << 20,
  trickleWindowMs: DEFAULT_TRICKLE_LIMITS.windowMs,
  maxTrickleMessages: DEFAULT_TRICKLE_LIMITS.maxMessages,
  maxTrickleCandidates: DEFAULT_TRICKLE_LIMITS.maxCandidates,
  trickleMessagesPerSecond: 2,
  trickleBurst: 4,
});

export interface RendezvousServerOptions {
  /**
   * STUN endpoints announced in `hello` ("ip:port"; "0.0.0.0:port" means "the host you reached me
   * at"). Defaults to the primary address of `stun`.
   */
  stunAddresses?: string[];
  /** The STUN server whose Binding requests prove server-reflexive addresses (see `observer`). */
  stun?: StunServer;
  /**
   * Where proofs are recorded. The StunServer must feed it: create the observer first and pass
   * `onBinding: observer.onBinding` to StunServer.listen (or hook `server.observer` later).
   */
  observer?: ReflexiveObserver;
  registry?: Registry;
  limits?: Partial<RendezvousLimits>;
  timing?: StartTimingOptions;
  /** URL path of the WebSocket endpoint (default "/"). */
  path?: string;
  /**
   * Dial-back at registration (see dial-back.ts): probes from this address, which must differ
   * from the STUN primary address (the alternate address). Absent: no dial-back, and
   * `registered` carries no `reachable`.
   */
  dialBack?: DialBackOptions;
  /** This node's name in registry records (default "local"). */
  nodeId?: string;
  /**
   * TURN relays (and credentials minted for the peer) to hand each peer in `registered`;
   * `localAddress` is the server address the peer's WebSocket arrived at (a dual-stack server
   * offers the relay in the family the peer reached it by).
   */
  relays?: (peerId: string, localAddress: string) => RelayOffer[];
  /** The capabilities offered in hello (default: all this code knows, CAPABILITIES; [] turns trickle off). */
  capabilities?: readonly Capability[];
  now?: () => number;
  randomBytes?: (size: number) => Uint8Array;
}

export interface RendezvousServerStats {
  connections: number;
  peers: number;
  sessions: number;
  messages: number;
  errors: number;
  rateLimited: number;
  punches: number;
  refused: number;
  /** Punched sessions still open for trickled candidates. */
  trickleSessions: number;
  /** Trickle messages forwarded. */
  trickled: number;
}

type ConnectionState = 'hello' | 'registered' | 'closed';

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
  errors: TokenBucket;
  queue: Promise<void>;
  queued: number;
  helloTimer: NodeJS.Timeout | undefined;
  /** Pending sessions this socket takes part in, as initiator or target. */
  sessions: Set<string>;
  /** The outstanding `challenge` of a registered socket (at most one; a new `refresh` replaces it). */
  challenge: { nonce: string; token: string } | undefined;
  /** Negotiated at registration (0 before). */
  version: number;
  capabilities: Capability[];
  /** Punched sessions this socket takes part in, open for trickling. */
  punched: Set<string>;
  /** What registration proved about its network (for metrics; 'unknown' before). */
  nat: NatClass | 'unknown';
}

interface Session {
  id: string;
  initiator: Connection;
  target: Connection;
  intent: Signed;
  intentHash: string;
  /** The intent's validated body. */
  body: IntentBody;
  timer: NodeJS.Timeout;
}

/** What one peer of a punched session may still trickle. */
interface TrickleAllowance {
  messages: number;
  candidates: number;
  ended: boolean;
  rate: TokenBucket;
}

/** A session after its punch: kept for trickled candidates until the window closes. */
interface PunchedSession {
  id: string;
  initiator: Connection;
  target: Connection;
  allowance: Map<Connection, TrickleAllowance>;
  timer: NodeJS.Timeout;
}

/** A pending session gets at least this long for the target's answer. */
const MIN_SESSION_MS = 2_000;

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
  readonly #sessions = new Map<string, Session>();
  readonly #punched = new Map<string, PunchedSession>();
  readonly #capabilities: Capability[];
  readonly #counters = { messages: 0, errors: 0, rateLimited: 0, punches: 0, refused: 0, trickled: 0 };
  #http: http.Server | undefined;
  #ownsHttp = false;
  #pingTimer: NodeJS.Timeout;
  #nextId = 0;
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
    this.#nodeId = options.nodeId ?? 'local';
    this.#dialBack = options.dialBack;
    this.#capabilities = knownCapabilities(options.capabilities ?? CAPABILITIES);
    this.#now = options.now ?? Date.now;
    this.#randomBytes = options.randomBytes ?? ((size) => cryptoRandomBytes(size));
    // ws closes (1009) frames beyond maxPayload outright; frames between our own limit and that
    // get a 'too-large' error reply and the socket stays up.
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: this.#limits.maxMessageBytes * 4, perMessageDeflate: false });
    this.#pingTimer = setInterval(() => this.#pingAll(), this.#limits.pingIntervalMs);
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
    return { connections: this.#connections.size, peers, sessions: this.#sessions.size, trickleSessions: this.#punched.size, ...this.#counters };
  }

  /** Drops every socket and timer. Resolves when the HTTP listener (if this server made it) has closed. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#pingTimer);
    this.#http?.off('upgrade', this.#onUpgrade);
    for (const connection of [...this.#connections.values()]) {
      this.#send(connection, { type: 'error', code: 'shutdown', message: 'the rendezvous server is shutting down' });
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
    if (this.#closed || this.#connections.size >= this.#limits.maxConnections
      || (this.#perAddress.get(address) ?? 0) >= this.#limits.maxConnectionsPerAddress) {
      rejectUpgrade(socket, 503, 'Service Unavailable');
      publishError({ server: this, code: 'max-connections' });
      return;
    }
    const local = request.socket.localAddress ?? '';
    this.#wss.handleUpgrade(request, socket, head, (ws) => this.#onConnection(ws, address, local));
  };

  #onConnection(ws: WebSocket, address: string, localAddress: string): void {
    const token = (n: number): string => Buffer.from(this.#randomBytes(n)).toString('base64url');
    const connection: Connection = {
      id: `${this.#nodeId}:${++this.#nextId}`,
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
      messages: new TokenBucket(this.#limits.messagesPerSecond, this.#limits.messageBurst),
      errors: new TokenBucket(1, this.#limits.errorBurst),
      queue: Promise.resolve(),
      queued: 0,
      helloTimer: undefined,
      sessions: new Set(),
      challenge: undefined,
      version: 0,
      capabilities: [],
      punched: new Set(),
      nat: 'unknown',
    };
    this.#connections.set(connection.id, connection);
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
    this.observer.expect(connection.token);
    ws.on('error', (error) => debug('%s: %s', connection.id, error.message));
    ws.on('close', () => this.#cleanUp(connection));
    ws.on('pong', () => {
      connection.lastPong = performance.now();
      if (connection.pingSentAt !== undefined) connection.rtt.sample(connection.lastPong - connection.pingSentAt);
      connection.pingSentAt = undefined;
    });
    ws.on('message', (data, isBinary) => this.#onFrame(connection, data, isBinary));
    connection.helloTimer = setTimeout(() => {
      if (connection.state !== 'hello') return;
      this.#send(connection, { type: 'error', code: 'registration-timeout', message: `no registration within ${this.#limits.helloTimeoutMs} ms of hello` });
      connection.ws.close(1008, 'registration timeout');
    }, this.#limits.helloTimeoutMs);
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
    clearTimeout(connection.helloTimer);
    this.observer.forget(connection.token);
    if (connection.challenge) this.observer.forget(connection.challenge.token);
    this.#connections.delete(connection.id);
    const count = (this.#perAddress.get(connection.address) ?? 1) - 1;
    if (count > 0) this.#perAddress.set(connection.address, count);
    else this.#perAddress.delete(connection.address);
    for (const id of [...connection.sessions]) {
      const session = this.#sessions.get(id);
      if (!session) continue;
      this.#endSession(session);
      // The initiator waits for an answer that will not come; the target's copy simply expires.
      if (session.target === connection) {
        this.#send(session.initiator, { type: 'error', code: 'peer-not-found', message: `the target of session ${id} disconnected`, ref: id });
      }
      publishConnect({ server: this, outcome: 'abandoned', reason: session.target === connection ? 'target-left' : 'initiator-left', initiator: session.initiator.nat, target: session.target.nat });
    }
    // Trickling needs both peers: a punched session ends with either socket.
    for (const id of [...connection.punched]) {
      const punched = this.#punched.get(id);
      if (punched) this.#endPunched(punched);
    }
    if (peerId) this.#registry.unregister(peerId, connection.id).catch((error: unknown) => debug('unregister %s: %s', peerId, String(error)));
  }

  #pingAll(): void {
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
    if (connection.ws.readyState !== WebSocket.OPEN) return;
    if (connection.ws.bufferedAmount > this.#limits.maxBufferedBytes) {
      // A peer that does not read its socket must not make the server buffer without bound.
      debug('%s: %d bytes unsent, dropping', connection.id, connection.ws.bufferedAmount);
      connection.ws.terminate();
      this.#cleanUp(connection);
      return;
    }
    connection.ws.send(encodeMessage(message));
  }

  /**
   * Answers with `error` (echoing the request's `id`, when the message had a valid one); a socket
   * that keeps causing errors is closed (1008 Policy Violation).
   */
  #refuse(connection: Connection, code: RendezvousErrorReason, message: string, ref?: string, id?: number): void {
    this.#counters.errors++;
    publishError({ server: this, code });
    this.#send(connection, { type: 'error', code, message, ...(id === undefined ? {} : { id }), ...(ref === undefined ? {} : { ref }) });
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
    connection.queue = connection.queue
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
        connection.queued--;
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
    }
  }

  // --- register -----------------------------------------------------------------------------

  async #register(connection: Connection, message: RegisterMessage): Promise<void> {
    if (connection.state === 'registered') throw new Refusal('already-registered', `register: this socket is already registered as ${connection.peerId}`);
    // 0. A version hello offered; the capabilities both sides know (unknown names are ignored).
    if (!SUPPORTED_VERSIONS.includes(message.version)) {
      throw new Refusal('unsupported-version', `register.version: ${message.version}, but this server speaks ${SUPPORTED_VERSIONS.join(', ')}`);
    }
    const capabilities = knownCapabilities(message.capabilities).filter((c) => this.#capabilities.includes(c));
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
    const existing = await this.#registry.lookup(body.peerId);
    if (!existing && (await this.#registry.size()) >= this.#limits.maxPeers) {
      this.#refuse(connection, 'server-full', `register: the server holds ${this.#limits.maxPeers} peers; try another server or later`, undefined, message.id);
      connection.ws.close(1013, 'server full');
      return;
    }
    if (gone(connection)) return;
    const previous = await this.#registry.register({
      peerId: body.peerId, connectionId: connection.id, node: this.#nodeId, srflx: body.srflx,
      privateEndpoints: body.privateEndpoints, registeredAt: this.#now(), ...(reachable ? { reachable } : {}),
    });
    if (gone(connection)) {
      await this.#registry.unregister(body.peerId, connection.id);
      return;
    }
    const older = previous && previous.connectionId !== connection.id ? this.#connections.get(previous.connectionId) : undefined;
    if (older) {
      this.#send(older, { type: 'error', code: 'replaced', message: `a newer registration of ${body.peerId} took over` });
      older.ws.close(4000, 'replaced');
      older.peerId = undefined; // its registry entry now belongs to the newer socket
      this.#cleanUp(older);
    }
    const relays = this.#relays?.(body.peerId, connection.localAddress);
    connection.state = 'registered';
    connection.peerId = body.peerId;
    connection.version = message.version;
    connection.capabilities = capabilities;
    connection.nat = natClass(body, reachable);
    publishRegistered({ server: this, nat: connection.nat });
    clearTimeout(connection.helloTimer);
    this.observer.forget(connection.token);
    this.#send(connection, {
      type: 'registered', id: message.id, version: message.version, capabilities, peerId: body.peerId, srflx: body.srflx,
      observedSrflx: observed ? formatAddress(observed) : null, ...(reachable ? { reachable } : {}),
      ...(relays && relays.length > 0 ? { relays } : {}),
    });
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
    // 1. The intent must be signed by this socket's peer: nobody sends intents in another's name.
    const intent = validateIntentBody(openSigned(message.intent, DOMAIN.intent, from), this.#limits, 'connect.intent.body');
    const ref = intent.session;
    if (intent.from !== from) throw new Refusal('bad-intent', `connect.intent.body.from: ${intent.from} is not the registered peer of this socket`, ref);
    if (intent.to === from) throw new Refusal('bad-intent', 'connect.intent.body.to: a peer cannot connect to itself', ref);
    this.#checkExpiry(intent, ref);
    // 2. Bounded pending state.
    if (this.#sessions.has(ref)) throw new Refusal('session-in-use', `connect.intent.body.session: ${ref} is already pending`, ref);
    if (connection.sessions.size >= this.#limits.maxPendingIntents || this.#sessions.size >= this.#limits.maxSessions) {
      throw new Refusal('too-many-pending', `connect: ${connection.sessions.size} sessions already pending (at most ${this.#limits.maxPendingIntents})`, ref);
    }
    // 3. The target must be registered here, and not flooded.
    const record = await this.#registry.lookup(intent.to);
    const target = record?.node === this.#nodeId ? this.#connections.get(record.connectionId) : undefined;
    if (gone(connection)) return;
    if (!target || target.state !== 'registered') throw new Refusal('peer-not-found', `connect: ${intent.to} is not registered with this server`, ref);
    // Both peers read each other's signed bodies: only peers on one version can meet.
    if (target.version !== connection.version) {
      throw new Refusal('unsupported-version', `connect: ${intent.to} registered with protocol version ${target.version}, this peer with ${connection.version}`, ref);
    }
    if (target.sessions.size >= this.#limits.maxPendingIntents) {
      throw new Refusal('too-many-pending', `connect: ${intent.to} has too many connection requests pending; try again later`, ref);
    }
    if (this.#sessions.has(ref)) throw new Refusal('session-in-use', `connect.intent.body.session: ${ref} is already pending`, ref);
    // At least a moment for the target to answer, even when the initiator's clock runs behind.
    const lifetime = Math.min(Math.max(intent.expires - this.#now(), MIN_SESSION_MS), this.#limits.maxIntentLifetimeMs);
    const session: Session = {
      id: ref, initiator: connection, target, intent: message.intent, intentHash: bodyHash(message.intent), body: intent,
      timer: setTimeout(() => {
        this.#endSession(session);
        publishConnect({ server: this, outcome: 'timed-out', reason: 'none', initiator: connection.nat, target: target.nat });
        this.#send(connection, { type: 'error', code: 'timeout', message: `${intent.to} did not answer before the intent expired`, ref });
      }, lifetime),
    };
    this.#sessions.set(ref, session);
    connection.sessions.add(ref);
    target.sessions.add(ref);
    this.#send(target, { type: 'incoming', intent: message.intent });
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
    session.initiator.sessions.delete(session.id);
    session.target.sessions.delete(session.id);
  }

  // --- accept / refuse ------------------------------------------------------------------------

  #ownSession(connection: Connection, id: string, what: string): Session {
    const session = this.#sessions.get(id);
    if (!session || session.target !== connection) throw new Refusal('unknown-session', `${what}: no pending session ${id} for this peer`, id);
    return session;
  }

  async #accept(connection: Connection, message: AcceptMessage): Promise<void> {
    // The accept must be signed by this socket's peer (the target) and answer exactly the intent forwarded.
    const accept = validateAcceptBody(openSigned(message.accept, DOMAIN.accept, connection.peerId!), this.#limits, 'accept.accept.body');
    const session = this.#ownSession(connection, accept.session, 'accept');
    if (accept.intentHash !== session.intentHash) {
      throw new Refusal('bad-intent', `accept.accept.body.intentHash: does not match the intent of session ${session.id}`, session.id);
    }
    this.#endSession(session);
    const { initiator, target } = session;
    const key = Buffer.from(this.#randomBytes(32)).toString('base64');
    const [initiatorDelay, targetDelay] = startDelays(initiator.rtt.srtt, target.rtt.srtt, this.#timing);
    const common = { type: 'punch', session: session.id, intent: session.intent, accept: message.accept, key } as const;
    const punches = [
      { to: initiator, delay: initiatorDelay, message: { ...common, peer: target.peerId!, role: 'controlling' as const } },
      { to: target, delay: targetDelay, message: { ...common, peer: initiator.peerId!, role: 'controlled' as const } },
    ].sort((a, b) => a.delay - b.delay);
    // Sending a punch (serialising two signed bodies) takes ms: the one told to wait less goes
    // first, and the other's delay counts from when it is sent.
    const decided = performance.now();
    for (const { to, delay, message } of punches) {
      this.#send(to, { ...message, startInMs: Math.max(0, delay - Math.round(performance.now() - decided)) });
    }
    this.#counters.punches++;
    publishConnect({
      server: this, outcome: 'accepted', reason: 'none', initiator: initiator.nat, target: target.nat,
      transport: session.body.transport ?? 'udp', technique: techniqueHint(session.body, accept),
    });
    this.#keepPunched(session.id, initiator, target);
  }

  // --- trickle ----------------------------------------------------------------------------------

  /**
   * Keeps a punched session for trickled candidates until the window closes or either socket
   * does. When maxSessions are kept already the session is not: its trickles get
   * `unknown-session` (a lost optimisation, never a lost connection).
   */
  #keepPunched(id: string, initiator: Connection, target: Connection): void {
    if (this.#punched.size >= this.#limits.maxSessions || gone(initiator) || gone(target)) return;
    const allowance = (): TrickleAllowance => ({
      messages: 0, candidates: 0, ended: false, rate: new TokenBucket(this.#limits.trickleMessagesPerSecond, this.#limits.trickleBurst),
    });
    const punched: PunchedSession = {
      id, initiator, target, allowance: new Map([[initiator, allowance()], [target, allowance()]]),
      timer: setTimeout(() => this.#endPunched(punched), this.#limits.trickleWindowMs),
    };
    this.#punched.set(id, punched);
    initiator.punched.add(id);
    target.punched.add(id);
  }

  #endPunched(punched: PunchedSession): void {
    clearTimeout(punched.timer);
    this.#punched.delete(punched.id);
    punched.initiator.punched.delete(punched.id);
    punched.target.punched.delete(punched.id);
  }

  /**
   * Candidates one peer of a punched session found late, for the other peer only. The steps
   * follow RFC 8838 §8-9 where they apply to a relaying server, cheapest checks first.
   */
  async #trickle(connection: Connection, message: TrickleMessage): Promise<void> {
    const ref = message.session;
    // 1. A session this socket was punched into, still within its trickle window.
    const punched = this.#punched.get(ref);
    const allowance = punched?.allowance.get(connection);
    if (!punched || !allowance) throw new Refusal('unknown-session', `trickle: no punched session ${ref} of this peer within the last ${this.#limits.trickleWindowMs} ms`, ref);
    const other = punched.initiator === connection ? punched.target : punched.initiator;
    // 2. Both peers negotiated trickle.
    if (!connection.capabilities.includes('trickle')) throw new Refusal('unsupported-capability', 'trickle: this peer did not negotiate the \'trickle\' capability', ref);
    if (!other.capabilities.includes('trickle')) throw new Refusal('unsupported-capability', `trickle: ${other.peerId} did not negotiate the 'trickle' capability`, ref);
    // 3. The session's rate, before spending a signature verification on it.
    if (!allowance.rate.take()) {
      this.#counters.rateLimited++;
      throw new Refusal('rate-limited', `trickle: more than ${this.#limits.trickleMessagesPerSecond} per second for session ${ref}; message dropped`, ref);
    }
    // 4. Signed by this socket's peer, about this session (the receiver verifies again).
    const body = validateTrickleBody(openSigned(message.signed, DOMAIN.trickle, connection.peerId!), this.#limits, 'trickle.signed.body');
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
    this.#send(other, { type: 'candidates', session: ref, signed: message.signed });
    this.#send(connection, { type: 'ack', id: message.id });
    this.#counters.trickled++;
  }

  async #refuseSession(connection: Connection, message: RefuseMessage): Promise<void> {
    const session = this.#ownSession(connection, message.session, 'refuse');
    this.#endSession(session);
    this.#counters.refused++;
    publishConnect({ server: this, outcome: 'refused', reason: 'peer', initiator: session.initiator.nat, target: session.target.nat });
    this.#send(session.initiator, { type: 'error', code: 'refused', message: message.reason || 'the peer refused', ref: session.id });
  }
}

/** The `id` of a frame's JSON when it is a valid request id (for answering even a message that fails validation). */
function requestIdOf(json: unknown): number | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const id = (json as Record<string, unknown>)['id'];
  return typeof id === 'number' && Number.isSafeInteger(id) && id >= 1 ? id : undefined;
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
