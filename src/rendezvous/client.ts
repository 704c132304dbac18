/**
 * The peer's side of the rendezvous protocol. It registers (hello -> STUN proof of the
 * server-reflexive address from the peer's one UDP socket -> signed register -> registered),
 * sends signed intents, answers incoming ones with signed accepts, and turns `punch` messages
 * into PunchInstructions.
 *
 * The server is not trusted with addresses: a PunchInstruction's remote candidates come only
 * from the other peer's signed object (the target's accept, or the initiator's intent), verified
 * against the peer id this side chose or was asked by. A punch that fails any check is dropped
 * (and reported as 'rejected'), never returned. @see docs/decisions/004-rendezvous-protocol.md
 */
import type { Socket as UdpSocket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { randomBytes as poolRandomBytes } from '../random-pool.js';
import { deadline } from '../deadline.js';
import { debuglog } from 'node:util';
import { WebSocket, type RawData } from 'ws';
import { AbortedError, NatpunchError, UsageError } from '../errors.js';
import { type Identity, normalizePeerId } from '../identity/index.js';
import { type CandidateTransport, type LocalCandidate, type SignalledCandidate, prioritise } from '../punch/candidate.js';
import type { RetransmissionOptions } from '../stun/retransmission.js';
import { StunUdpClient } from '../stun/udp-client.js';
import {
  type TransportAddress, AttrType, formatAddress, parseAddress, reflexiveAddress, username,
} from '../wire/index.js';
import { RendezvousError, RendezvousProtocolError, RendezvousVerifyError } from './errors.js';
import {
  type AcceptBody, type NatMapping, type AckMessage, type Capability, type ChallengeMessage, type UpdatedMessage, type HelloMessage, type Reachability,
  type ReachableTransport, type IncomingMessage, type IntentBody, type MessageLimits, type PunchMessage, type RegisteredMessage, type RelayOffer, type Role,
  type ClientMessage, type ErrorMessage, type ParsedMessage, type ReportMessage, type ReportedPath, type Signed, type TrickleMessage, CAPABILITIES, DEFAULT_MESSAGE_LIMITS, MAX_INTENT_LIFETIME_MS, PEER_CAPABILITIES,
  SERVER_MESSAGE_TYPES, SUPPORTED_VERSIONS, candidateRecord, classify, encodeMessage, endpoint, fromCandidateRecord, knownCapabilities,
  parseMessage, toCandidateRecord, unmappedIp, validateAcceptBody, validateIntentBody,
} from './messages.js';
import { ReplayCache } from './replay-cache.js';
import { connectFailure, parseServerUrl } from './server-url.js';
import { PendingRequests } from './requests.js';
import { DOMAIN, bodyHash, openSigned, peekSigned, signObject } from './signed.js';
import {
  type TrickleCandidate, type TrickleLimits, type TrickledCandidates, DEFAULT_TRICKLE_LIMITS, TrickleSessions,
} from './trickle.js';

const debug = debuglog('natpunch:rendezvous');

/**
 * What the initiator asks for: 'udp' or 'tcp' (punching or reversal on that transport), 'auto'
 * (race them, the relay as a fallback when both peers have one), 'relay' (the relay only).
 */
export type Transport = 'udp' | 'tcp' | 'auto' | 'relay';

/** How a punched session ended for this peer, as `report` tells the server. */
export type SessionReport =
  | { outcome: 'connected'; path: ReportedPath; technique: string; ms: number }
  | { outcome: 'failed'; ms: number };

/** What a peer signs about its own reachability into intents and accepts. */
export interface SignedReachability {
  /** Transports over which it is directly reachable. */
  reachable: ReachableTransport[];
  /** Its reversal listener endpoints (only meaningful with 'tcp' in `reachable`). */
  tcpListen: string[];
  /** Its NAT maps every destination to a new random port (IntentBody.natMapping). */
  natMapping?: NatMapping;
}

/** What both sides get when a session is agreed: everything the punch layer needs, all verified. */
export interface PunchInstruction {
  session: string;
  /** The other peer's id. */
  peer: string;
  role: Role;
  /** ONLY the UDP candidates inside the other peer's verified signed object, typed by it. */
  remoteCandidates: SignalledCandidate[];
  /** The UDP candidates this side signed. */
  localCandidates: SignalledCandidate[];
  /** ONLY the TCP candidates inside the other peer's verified signed object (empty if it offered none). */
  remoteTcpCandidates: SignalledCandidate[];
  /** The TCP candidates this side signed. */
  localTcpCandidates: SignalledCandidate[];
  /**
   * The known capabilities the other peer signed (e.g. 'trickle': it takes trickled candidates,
   * and may send some: subscribe with `onCandidates(session, ...)`).
   */
  remoteCapabilities: Capability[];
  /** What the initiator's signed intent asked for: 'tcp', 'auto' (race UDP and TCP), else UDP. */
  transport: Transport;
  /** Where the other peer signed it is directly reachable (connection reversal: dial it, don't punch). */
  remoteReachable: Reachability;
  /** What this side signed about itself. */
  localReachable: Reachability;
  /** What each side signed about its NAT's mapping (birthday probing: src/punch/birthday.ts). */
  remoteNatMapping?: NatMapping;
  localNatMapping?: NatMapping;
  /** ONLY the reversal listener endpoints inside the other peer's verified signed object. */
  remoteTcpListen: TransportAddress[];
  /** 32-byte key for MESSAGE-INTEGRITY on this session's connectivity checks. */
  key: Uint8Array;
  /** Local ms epoch at which to send the first packet (receipt time + the server's startInMs). */
  startAt: number;
  /** The intent's resume tag: this session punches new paths for an existing connection (IntentBody.resume). */
  resume?: string;
}

export interface RendezvousClientOptions {
  /** ws:// or wss:// URL of the rendezvous server. */
  url: string;
  identity: Identity;
  /** The peer's one UDP socket, already bound: the STUN proof must come from its NAT mapping. */
  udpSocket: UdpSocket;
  /**
   * The peer's IPv6 socket, when it has one besides an IPv4 udpSocket: a rendezvous server
   * reached over IPv6 names IPv6 STUN endpoints, and the proof goes out of this socket (through
   * `stunClient`, which must send IPv6 from it: StunUdpClient's `socket6`).
   */
  udpSocket6?: UdpSocket;
  /** "ip:port" of udpSocket on each interface (host candidates). */
  privateEndpoints: string[];
  /** Aborts registration (the client is closed). Later calls take their own signals. */
  signal?: AbortSignal;
  /**
   * A STUN client on udpSocket to use, for when the socket's owner routes datagrams itself
   * (StunUdpClient with `listen: false`). Default: a temporary listening client.
   */
  stunClient?: StunUdpClient;
  /**
   * STUN endpoints to prove the server-reflexive address with, instead of hello's list. Without
   * it only hello's entries on the rendezvous server's own IP are used, so a server cannot aim
   * this peer's STUN requests at a stranger.
   */
  stunServers?: string[];
  /**
   * Whether to accept an intent from `fromPeerId` (default: accept all), asked once its
   * signature verified; a string refuses with that reason, which the initiator is told.
   */
  accept?: (fromPeerId: string) => boolean | string | Promise<boolean | string>;
  /**
   * The UDP candidates to sign into intents and accepts (default: privateEndpoints as host,
   * srflx as srflx). An "ip:port" string is typed by what this peer knows of it: host when its
   * IP is one of privateEndpoints', else srflx (a mapping STUN reported); give a LocalCandidate
   * for any other type.
   */
  candidates?: () => (string | LocalCandidate)[] | Promise<(string | LocalCandidate)[]>;
  /**
   * TCP candidates to sign into intents and accepts, all on one local port L (default: none),
   * typed like `candidates`; `transport` is the one the intent asks for, so a peer can skip work
   * a UDP-only session does not need.
   */
  tcpCandidates?: (transport: Transport) => (string | LocalCandidate)[] | Promise<(string | LocalCandidate)[]>;
  /** The capabilities to ask for (default: all this code knows, CAPABILITIES); the server and the other peer must have them too. */
  capabilities?: readonly Capability[];
  /** Trickle allowance; keep the defaults, which the server shares. */
  trickle?: Partial<TrickleLimits>;
  /** The port of this peer's reversal listener, signed into the registration so the server dials it back. */
  tcpListenPort?: number;
  /** Called with hello's token before anything else: the server's dial-back probes carry it. */
  onHello?: (token: string) => void;
  /** What to sign about this peer's reachability into intents and accepts (default: nothing). */
  reachability?: () => SignedReachability;
  /** Registration deadline, WebSocket open to `registered` (default 10 s). */
  timeoutMs?: number;
  /** STUN retransmissions for the proof (default rto 250 ms, rc 4, rm 8: about 3.8 s). */
  stunRetransmission?: RetransmissionOptions;
  /** Close when the server has sent no ping for this long (default 60 s). */
  serverTimeoutMs?: number;
  /** Cap on the server's startInMs (default 5000 ms). */
  maxStartDelayMs?: number;
  /** Incoming intents accepted but not yet punched (default 32). */
  maxPendingIncoming?: number;
  /**
   * How far the initiator's clock may be off from ours when judging an intent's expiry
   * (default 30 s). Replayed nonces are remembered for the intent's lifetime plus this.
   */
  clockToleranceMs?: number;
  limits?: Partial<MessageLimits>;
  /**
   * The intent nonces already seen, to share across connections: a reconnecting peer passes the
   * same cache to each new client, so a server cannot replay an intent the peer accepted on an
   * earlier connection (default: one of its own, cleared by close()).
   */
  replayCache?: ReplayCache;
  now?: () => number;
  randomBytes?: (size: number) => Uint8Array;
}

export interface TrickleOptions {
  /** No more candidates for this session will follow (RFC 8838 §8.2 end-of-candidates). */
  end?: boolean;
  signal?: AbortSignal;
  /** How long to wait for the server's ack (default: the client's timeoutMs, 10 s). */
  timeoutMs?: number;
}

export interface ConnectOptions {
  signal?: AbortSignal;
  /** How long to wait for the punch, and the intent's lifetime (default 15 s, at most 60 s). */
  timeoutMs?: number;
  /** Ask the target to punch this transport (signed into the intent; default 'udp'). */
  transport?: Transport;
  /** Punch new paths for an existing connection (IntentBody.resume), signed into the intent. */
  resume?: string;
}

interface Initiated {
  target: string;
  intent: Signed;
  intentHash: string;
  candidates: SignalledCandidate[];
  own: SignedReachability;
  capabilities: Capability[];
  transport: Transport;
  resume: string | undefined;
  resolve(instruction: PunchInstruction): void;
  reject(error: Error): void;
}

interface Accepted {
  from: string;
  intent: Signed;
  accept: Signed;
  intentBody: IntentBody;
  candidates: SignalledCandidate[];
  own: SignedReachability;
  capabilities: Capability[];
  timer: NodeJS.Timeout;
}

/** What one signed object (intent or accept) says about its signer. */
interface SignedOffer {
  candidates: SignalledCandidate[];
  reachable: ReachableTransport[];
  tcpListen: string[];
  capabilities: Capability[];
  natMapping?: NatMapping;
}

interface HelloWaiter {
  resolve(message: HelloMessage): void;
  reject(error: Error): void;
}

const DEFAULT_STUN_RETRANSMISSION: RetransmissionOptions = { rto: 250, rc: 4, rm: 8 };
const MAX_CONNECT_TIMEOUT_MS = 60_000;

export interface RendezvousClient {
  on(event: 'punch', listener: (instruction: PunchInstruction) => void): this;
  /** Verified candidates the other peer of a punched session trickled (also per session: onCandidates). */
  on(event: 'candidates', listener: (batch: TrickledCandidates) => void): this;
  /** A signed object or punch failed verification and was dropped. For logs and tests. */
  on(event: 'rejected', listener: (error: RendezvousVerifyError) => void): this;
  /** The connection to the server ended; `reason` says why when the server said so. */
  on(event: 'close', listener: (reason: RendezvousError) => void): this;
  once(event: 'punch', listener: (instruction: PunchInstruction) => void): this;
  once(event: 'candidates', listener: (batch: TrickledCandidates) => void): this;
  once(event: 'rejected', listener: (error: RendezvousVerifyError) => void): this;
  once(event: 'close', listener: (reason: RendezvousError) => void): this;
}

export class RendezvousClient extends EventEmitter {
  readonly peerId: string;
  readonly #options: RendezvousClientOptions;
  readonly #limits: MessageLimits;
  readonly #ws: WebSocket;
  readonly #now: () => number;
  readonly #randomBytes: (size: number) => Uint8Array;
  readonly #replay: ReplayCache;
  readonly #initiated = new Map<string, Initiated>();
  readonly #accepted = new Map<string, Accepted>();
  #srflx: string | null = null;
  #stunServer: TransportAddress | null = null;
  #helloStun: TransportAddress[] = [];
  #reachable: Reachability | null = null;
  #relays: RelayOffer[] = [];
  /** Incoming intents waiting on the accept policy: they count against maxPendingIncoming too. */
  #deciding = 0;
  #remoteAddress: string | undefined;
  #hello: HelloWaiter | undefined;
  readonly #requests = new PendingRequests();
  readonly #trickles: TrickleSessions;
  /** Negotiated at registration. */
  #version = 0;
  #capabilities: Capability[] = [];
  #closeReason: RendezvousError | undefined;
  /** The WebSocket upgrade succeeded (a failure after it is a broken connection, not an unreachable server). */
  #opened = false;
  #livenessTimer: NodeJS.Timeout | undefined;
  #closeTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** The update in flight: the server keeps one challenge per socket, so concurrent calls share it. */
  #updating: Promise<string> | undefined;

  private constructor(options: RendezvousClientOptions) {
    super();
    this.#options = options;
    this.peerId = options.identity.peerId;
    this.#limits = { ...DEFAULT_MESSAGE_LIMITS, maxMessageBytes: 64 * 1024, ...options.limits };
    this.#now = options.now ?? Date.now;
    this.#randomBytes = options.randomBytes ?? poolRandomBytes;
    this.#replay = options.replayCache ?? new ReplayCache({ now: this.#now });
    this.#trickles = new TrickleSessions({ ...DEFAULT_TRICKLE_LIMITS, ...options.trickle }, this.#limits);
    parseServerUrl(options.url);
    this.#ws = new WebSocket(options.url, {
      maxPayload: this.#limits.maxMessageBytes, perMessageDeflate: false, handshakeTimeout: options.timeoutMs ?? 10_000,
    });
    this.#ws.on('upgrade', (response) => {
      this.#opened = true;
      this.#remoteAddress = response.socket.remoteAddress;
    });
    this.#ws.on('error', (error) => {
      debug('client %s: %s', this.peerId.slice(0, 8), error.message);
      // The first error is the cause of the close that follows (ws closes with 1006 after it).
      this.#closeReason ??= connectFailure(options.url, error, this.#opened);
    });
    this.#ws.on('ping', () => this.#armLiveness());
    this.#ws.on('message', (data, isBinary) => this.#onFrame(data, isBinary));
    this.#ws.on('close', (code, reason) => {
      this.#shutdown(this.#closeReason ?? new RendezvousError('closed', `the rendezvous server ${options.url} closed the connection (${code}${reason.length ? ` ${reason.toString()}` : ''})`));
    });
  }

  /**
   * Connects, proves the server-reflexive address of `udpSocket` and registers. Resolves once
   * the server has answered `registered`.
   * @throws RendezvousError (server said no, or closed), AbortedError, UsageError (bad options)
   */
  static async connect(options: RendezvousClientOptions): Promise<RendezvousClient> {
    options.privateEndpoints.forEach((e, i) => checkEndpoint(e, `privateEndpoints[${i}]`));
    if (options.signal?.aborted) throw new AbortedError('rendezvous connect aborted', { cause: options.signal.reason });
    const client = new RendezvousClient(options);
    try {
      await client.#register();
    } catch (error) {
      client.close();
      throw error;
    }
    return client;
  }

  /** This peer's server-reflexive UDP address as its STUN proof reported it, or null. */
  /** The STUN server that proved srflx: the peer keeps its mapping there alive. */
  get stunServer(): TransportAddress | null {
    return this.#stunServer;
  }

  get srflx(): string | null {
    return this.#srflx;
  }

  /** The STUN server to learn the TCP mapping from: the one that proved srflx, else hello's first (UDP may be blocked). */
  get tcpStunServer(): TransportAddress | null {
    return this.#stunServer ?? this.#helloStun[0] ?? null;
  }

  /** The server's dial-back result from `registered` (null: the server does not dial back). */
  get serverReachability(): Reachability | null {
    return this.#reachable;
  }

  /** The TURN relays (with credentials minted for this peer) from `registered`; empty when none. */
  get relays(): readonly RelayOffer[] {
    return this.#relays;
  }

  get #clockTolerance(): number {
    return this.#options.clockToleranceMs ?? 30_000;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The protocol version and capabilities negotiated with the server at registration. */
  get negotiated(): { version: number; capabilities: Capability[] } {
    return { version: this.#version, capabilities: [...this.#capabilities] };
  }

  /**
   * Asks `target` for a session: sends a signed intent carrying this peer's candidates and
   * resolves with the punch instruction once the target's signed accept has been verified.
   * @throws RendezvousError ('peer-not-found', 'refused', 'timeout', 'closed', ...),
   *   RendezvousVerifyError (the punch failed verification), AbortedError, InvalidPeerIdError
   */
  async connect(target: string, options: ConnectOptions = {}): Promise<PunchInstruction> {
    const to = normalizePeerId(target);
    if (to === this.peerId) throw new UsageError('rendezvous connect: the target is this peer itself');
    if (this.#closed) throw new RendezvousError('closed', 'rendezvous connect: the client is closed');
    const signal = options.signal;
    if (signal?.aborted) throw new AbortedError('rendezvous connect aborted', { cause: signal.reason });
    const timeoutMs = Math.min(options.timeoutMs ?? 15_000, MAX_CONNECT_TIMEOUT_MS);
    const session = this.#randomToken();
    const candidates = await this.#localCandidates(options.transport ?? 'udp');
    if (signal?.aborted) throw new AbortedError('rendezvous connect aborted', { cause: signal.reason });
    const body: IntentBody = {
      from: this.peerId, to, nonce: this.#randomToken(), expires: this.#now() + timeoutMs, candidates: candidates.map(toCandidateRecord), session,
    };
    // Optional fields only when used.
    if (options.transport === 'tcp' || options.transport === 'auto' || options.transport === 'relay') body.transport = options.transport;
    if (options.resume !== undefined) body.resume = options.resume;
    const own = this.#ownReachability();
    if (own.reachable.length) body.reachable = own.reachable;
    if (own.tcpListen.length) body.tcpListen = own.tcpListen;
    if (own.natMapping) body.natMapping = own.natMapping;
    const capabilities = this.#peerCapabilities();
    if (capabilities.length) body.capabilities = capabilities;
    const intent = signObject(this.#options.identity, DOMAIN.intent, body);
    return new Promise<PunchInstruction>((resolve, reject) => {
      // The id matches an error about this connect (refused at once: rate-limited, too-many-pending,
      // peer-not-found...); the punch itself is matched by session.
      const request = this.#requests.issue(undefined);
      request.answer.catch((error: Error) => this.#initiated.get(session)?.reject(error));
      const finish = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        request.cancel();
        this.#initiated.delete(session);
      };
      const onAbort = (): void => {
        finish();
        reject(new AbortedError('rendezvous connect aborted', { cause: signal?.reason }));
      };
      const timer = setTimeout(() => {
        finish();
        reject(new RendezvousError('timeout', `rendezvous connect: no punch from ${to} within ${timeoutMs} ms`, { ref: session }));
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#initiated.set(session, {
        target: to, intent, intentHash: bodyHash(intent), candidates, own, capabilities, transport: body.transport ?? 'udp', resume: body.resume,
        resolve: (instruction) => { finish(); resolve(instruction); },
        reject: (error) => { finish(); reject(error); },
      });
      if (this.#closed) this.#initiated.get(session)!.reject(new RendezvousError('closed', 'rendezvous connect: the client is closed'));
      else this.#send({ type: 'connect', id: request.id, intent });
    });
  }

  /**
   * Sends candidates found after the intent/accept (a port mapping, a relay allocation, a
   * prediction) to the other peer of a punched session, signed; resolves when the server has
   * forwarded them. `end` says there will be no more (RFC 8838 §8.2).
   * @throws RendezvousError: 'unknown-session' (no verified punch for it within the trickle
   *   window), 'unsupported-capability' (the other peer did not sign 'trickle'), 'trickle-limit',
   *   'timeout', or the server's refusal; UsageError (a candidate no peer may be aimed at); AbortedError
   */
  async trickle(session: string, candidates: readonly TrickleCandidate[], options: TrickleOptions = {}): Promise<void> {
    if (this.#closed) throw new RendezvousError('closed', 'rendezvous trickle: the client is closed');
    const signed = this.#trickles.sign(this.#options.identity, session, candidates, options.end ?? false);
    await this.#acked({ type: 'trickle', session, signed }, options);
  }

  /**
   * Tells the server how punched `session` ended for this peer (outcome, and for 'connected'
   * the path and technique), for its statistics: the server never sees which technique won
   * otherwise. Sent only when the server negotiated the 'report' capability (resolves false
   * without sending when it did not); resolves true once the server took it.
   * @throws RendezvousError: 'unknown-session' (no punch for it within the trickle window),
   *   'invalid' (already reported), 'timeout', or the server's refusal; AbortedError
   */
  async report(session: string, report: SessionReport, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<boolean> {
    if (this.#closed) throw new RendezvousError('closed', 'rendezvous report: the client is closed');
    if (!this.#capabilities.includes('report')) return false;
    const ms = Math.min(Math.max(0, Math.round(report.ms)), 600_000);
    await this.#acked(report.outcome === 'connected'
      ? { type: 'report', session, outcome: 'connected', path: report.path, technique: report.technique, ms }
      : { type: 'report', session, outcome: 'failed', ms }, options);
    return true;
  }

  /** Sends a request whose only answer is `ack` (`trickle`, `report`), bounded by `timeoutMs`. */
  async #acked(message: DistributiveOmit<TrickleMessage | ReportMessage, 'id'>, options: { timeoutMs?: number; signal?: AbortSignal }): Promise<void> {
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs ?? 10_000;
    const limit = deadline(timeoutMs, options.signal);
    const request = this.#requests.issue<AckMessage>('ack', limit.signal);
    this.#send({ ...message, id: request.id } as ClientMessage);
    try {
      await request.answer;
    } catch (error) {
      if (limit.signal.aborted && !options.signal?.aborted) {
        throw new RendezvousError('timeout', `rendezvous ${message.type}: no answer from the server within ${timeoutMs} ms`, { ref: message.session, cause: error });
      }
      throw error;
    } finally {
      limit.clear();
    }
  }

  /**
   * Subscribes to the verified candidates the other peer trickles for `session` (one the punch
   * was verified for): batches already received at once, then each new one, until the trickle
   * window closes. Returns the unsubscribe function.
   */
  onCandidates(session: string, listener: (batch: TrickledCandidates) => void): () => void {
    return this.#trickles.subscribe(session, listener);
  }

  /**
   * Moves the registration to this socket's current server-reflexive address, after its NAT
   * mapping changed (the peer's keepalive saw another XOR-MAPPED-ADDRESS): `refresh` ->
   * `challenge` -> STUN Binding with USERNAME = the challenge's token from the peer's UDP socket,
   * to the STUN server that proved the first one -> signed `update` -> `updated`. Resolves with the
   * new srflx, which later intents and accepts carry. Concurrent calls share one update.
   * @throws RendezvousError (the server refused, 'timeout', 'closed'), AbortedError
   */
  updateSrflx(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<string> {
    this.#updating ??= this.#update(options).finally(() => { this.#updating = undefined; });
    return this.#updating;
  }

  async #update(options: { signal?: AbortSignal; timeoutMs?: number }): Promise<string> {
    if (this.#closed) throw new RendezvousError('closed', 'rendezvous update: the client is closed');
    // A peer that registered while UDP was blocked tries hello's STUN server: UDP may work now.
    const server = this.#stunServer ?? this.#helloStun[0];
    if (!server) throw new RendezvousError('srflx-unproven', 'rendezvous update: the server named no STUN endpoint for this address family');
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs ?? 10_000;
    const limit = deadline(timeoutMs, options.signal);
    const { signal } = limit;
    try {
      const challenge = await this.#request<ChallengeMessage>({ type: 'refresh' }, 'challenge', signal);
      const stun = this.#options.stunClient ?? new StunUdpClient(this.#options.udpSocket, { socket6: this.#options.udpSocket6 });
      let srflx: string;
      try {
        const response = await stun.request(server, {
          attributes: [{ type: AttrType.Username, value: username.encode(challenge.token) }],
          signal, retransmission: this.#options.stunRetransmission ?? DEFAULT_STUN_RETRANSMISSION,
        });
        const mapped = reflexiveAddress(response.message);
        if (!mapped) throw new RendezvousError('srflx-unproven', `rendezvous update: the Binding response from ${formatAddress(server)} has no XOR-MAPPED-ADDRESS`);
        srflx = formatAddress(mapped);
      } finally {
        if (!this.#options.stunClient) stun.close();
      }
      const signed = signObject(this.#options.identity, DOMAIN.update, { peerId: this.peerId, nonce: challenge.nonce, srflx });
      const updated = await this.#request<UpdatedMessage>({ type: 'update', signed }, 'updated', signal);
      if (updated.srflx !== srflx) throw new RendezvousError('invalid', `updated.srflx: ${updated.srflx}, expected ${srflx}`);
      this.#srflx = srflx;
      this.#stunServer = server;
      return srflx;
    } catch (error) {
      if (signal.aborted && !options.signal?.aborted && !(error instanceof RendezvousError)) {
        throw new RendezvousError('timeout', `rendezvous update: not done within ${timeoutMs} ms`, { cause: error });
      }
      throw error;
    } finally {
      limit.clear();
    }
  }

  /** Closes the WebSocket and clears every timer; pending connects reject with reason 'closed'. */
  close(): void {
    if (this.#closed) return;
    if (this.#ws.readyState === WebSocket.OPEN) {
      this.#ws.close(1000);
      // The server answers the close frame at once; don't let a silent one hold the process.
      this.#closeTimer = setTimeout(() => this.#ws.terminate(), 1000);
    } else if (this.#ws.readyState === WebSocket.CONNECTING) {
      this.#ws.terminate();
    }
    this.#shutdown(new RendezvousError('closed', 'the rendezvous client was closed'));
  }

  #shutdown(reason: RendezvousError): void {
    if (this.#ws.readyState === WebSocket.CLOSED) clearTimeout(this.#closeTimer);
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#livenessTimer);
    this.#hello?.reject(reason);
    this.#hello = undefined;
    this.#requests.rejectAll(reason);
    for (const pending of [...this.#initiated.values()]) pending.reject(reason);
    for (const accepted of this.#accepted.values()) clearTimeout(accepted.timer);
    this.#accepted.clear();
    this.#trickles.clear();
    // A shared cache outlives this connection: its nonces stay replays on the next one.
    if (!this.#options.replayCache) this.#replay.clear();
    this.emit('close', reason);
  }

  /**
   * Checks that the connection to the server still carries anything: a WebSocket ping that must
   * be answered within `timeoutMs` (RFC 6455 §5.5.2). A peer whose network just changed cannot
   * wait for the server's next ping (serverTimeoutMs) to learn that its registration is gone; on
   * no answer the connection is closed ('timeout'), so a reconnecting client registers again.
   */
  probe(timeoutMs: number): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closeReason ?? new RendezvousError('closed', 'rendezvous probe: the connection closed'));
    return new Promise((resolve, reject) => {
      const done = (): void => { clearTimeout(timer); this.#ws.off('pong', onPong); this.off('close', onClose); };
      const onPong = (): void => { done(); resolve(); };
      const onClose = (reason: RendezvousError): void => { done(); reject(reason); };
      const timer = setTimeout(() => {
        done();
        const reason = new RendezvousError('timeout', `no pong from the rendezvous server within ${timeoutMs} ms`);
        this.#closeReason ??= reason;
        this.#ws.terminate();
        reject(reason);
      }, timeoutMs);
      this.#ws.on('pong', onPong);
      this.once('close', onClose);
      try {
        this.#ws.ping();
      } catch (error) {
        done();
        reject(new RendezvousError('closed', `rendezvous probe: ${(error as Error).message}`, { cause: error }));
      }
    });
  }

  #armLiveness(): void {
    clearTimeout(this.#livenessTimer);
    if (this.#closed) return;
    const timeoutMs = this.#options.serverTimeoutMs ?? 60_000;
    this.#livenessTimer = setTimeout(() => {
      this.#closeReason = new RendezvousError('timeout', `no ping from the rendezvous server for ${timeoutMs} ms`);
      this.#ws.terminate();
    }, timeoutMs);
  }

  #send(message: ClientMessage): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send(encodeMessage(message));
  }

  /**
   * Sends `message` with a fresh id and resolves with the server's answer of type `expect`
   * carrying that id; an error with that id rejects, as do close and abort.
   */
  #request<T extends RegisteredMessage | ChallengeMessage | UpdatedMessage | AckMessage>(
    message: DistributiveOmit<ClientMessage, 'id'>, expect: T['type'], signal: AbortSignal,
  ): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closeReason ?? new RendezvousError('closed', 'rendezvous: the connection closed'));
    const request = this.#requests.issue<T>(expect, signal);
    this.#send({ ...message, id: request.id } as ClientMessage);
    return request.answer;
  }

  /** The negotiated capabilities that concern the other peer: what intents and accepts sign. */
  #peerCapabilities(): Capability[] {
    return this.#capabilities.filter((c) => PEER_CAPABILITIES.includes(c));
  }

  #randomToken(): string {
    return Buffer.from(this.#randomBytes(16)).toString('base64url');
  }

  // --- registration ---------------------------------------------------------------------------

  async #register(): Promise<void> {
    const timeoutMs = this.#options.timeoutMs ?? 10_000;
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(this.#options.signal?.reason);
    this.#options.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => controller.abort(this.#opened
      ? new RendezvousError('timeout', `the rendezvous server ${this.#options.url} did not register this peer within ${timeoutMs} ms`)
      : connectFailure(this.#options.url, new Error('Opening handshake has timed out'), false)), timeoutMs);
    try {
      const signal = controller.signal;
      const hello = await this.#nextHello(signal);
      this.#armLiveness();
      // Version first: nothing else of a hello we cannot speak is to be acted on.
      const version = negotiateVersion(hello);
      const wanted = this.#options.capabilities ?? CAPABILITIES;
      const capabilities = knownCapabilities(hello.capabilities).filter((c) => wanted.includes(c));
      this.#options.onHello?.(hello.token);
      this.#srflx = await this.#proveReflexive(hello, signal);
      const signed = signObject(this.#options.identity, DOMAIN.register, {
        peerId: this.peerId, nonce: hello.nonce, srflx: this.#srflx,
        privateEndpoints: [...new Set(this.#options.privateEndpoints)].slice(0, this.#limits.maxCandidates),
        ...(this.#options.tcpListenPort ? { tcpListenPort: this.#options.tcpListenPort } : {}),
      });
      const registered = await this.#request<RegisteredMessage>({ type: 'register', version, capabilities, signed }, 'registered', signal);
      if (registered.peerId !== this.peerId) {
        throw new RendezvousError('invalid', `registered.peerId: ${registered.peerId}, expected ${this.peerId}`);
      }
      if (registered.version !== version) {
        throw new RendezvousError('unsupported-version', `registered.version: ${registered.version}, but this client registered with version ${version}`);
      }
      this.#version = version;
      // Only what both asked for: a server cannot switch on a capability this client did not want.
      this.#capabilities = knownCapabilities(registered.capabilities).filter((c) => capabilities.includes(c));
      this.#reachable = registered.reachable ?? null;
      this.#relays = registered.relays ?? [];
    } finally {
      clearTimeout(timer);
      this.#options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** The server's hello, the one message waited for that answers no request; close and abort reject. */
  #nextHello(signal: AbortSignal): Promise<HelloMessage> {
    return new Promise((resolve, reject) => {
      if (this.#closed) return reject(this.#closeReason ?? new RendezvousError('closed', 'rendezvous: the connection closed'));
      const onAbort = (): void => {
        this.#hello = undefined;
        reject(abortReason(signal));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.#hello = {
        resolve: (message) => { signal.removeEventListener('abort', onAbort); resolve(message); },
        reject: (error) => { signal.removeEventListener('abort', onAbort); reject(error); },
      };
    });
  }

  /**
   * STUN Binding with USERNAME = hello's token from the peer's UDP socket; the mapped address it
   * reports is the server-reflexive address to claim. null when no STUN server answers.
   * @see RFC 8489 §14.3, RFC 8445 §5.1.1.1
   */
  async #proveReflexive(hello: HelloMessage, signal: AbortSignal): Promise<string | null> {
    let family: 4 | 6;
    try {
      family = this.#options.udpSocket.address().family === 'IPv6' ? 6 : 4;
    } catch (error) {
      throw new UsageError(`rendezvous: udpSocket must be bound before connecting (${(error as Error).message})`);
    }
    const six = this.#options.udpSocket6;
    const servers = this.#stunServers(hello).filter((s) => s.family === family || (s.family === 6 && six !== undefined)).slice(0, 2);
    this.#helloStun = servers;
    if (servers.length === 0) return null;
    const stun = this.#options.stunClient ?? new StunUdpClient(this.#options.udpSocket, { socket6: six });
    try {
      for (const server of servers) {
        try {
          const response = await stun.request(server, {
            attributes: [{ type: AttrType.Username, value: username.encode(hello.token) }],
            signal, retransmission: this.#options.stunRetransmission ?? DEFAULT_STUN_RETRANSMISSION,
          });
          const mapped = reflexiveAddress(response.message);
          if (mapped) {
            this.#stunServer = server;
            return formatAddress(mapped);
          }
        } catch (error) {
          if (signal.aborted) throw abortReason(signal);
          debug('STUN %s: %s', formatAddress(server), (error as Error).message);
        }
      }
      return null;
    } finally {
      if (!this.#options.stunClient) stun.close();
    }
  }

  #stunServers(hello: HelloMessage): TransportAddress[] {
    if (this.#options.stunServers) return this.#options.stunServers.map((s) => parseAddress(s));
    const server = this.#remoteAddress ? unmappedIp(this.#remoteAddress) : undefined;
    if (!server) return [];
    const out: TransportAddress[] = [];
    for (const text of hello.stun) {
      const address = parseAddress(text);
      // "0.0.0.0:port": the rendezvous server's own host. Any other IP must be that host too.
      if (classify(address.address) === 'unspecified') out.push(parseAddress(server, address.port));
      else if (unmappedIp(address.address) === server) out.push(address);
      else debug('hello.stun: ignoring %s, not on the rendezvous server\'s address %s', text, server);
    }
    return out;
  }

  // --- incoming messages ------------------------------------------------------------------------

  #onFrame(data: RawData, isBinary: boolean): void {
    if (this.#closed) return;
    let message: ParsedMessage;
    try {
      if (isBinary) throw new RendezvousProtocolError('invalid', 'message: expected a text frame');
      message = parseMessage(frameBytes(data), this.#limits);
    } catch (error) {
      debug('client: dropping a message from the server: %s', (error as Error).message);
      return;
    }
    if (!SERVER_MESSAGE_TYPES.has(message.type)) return;
    switch (message.type) {
      case 'hello': {
        const waiter = this.#hello;
        this.#hello = undefined;
        waiter?.resolve(message);
        return;
      }
      case 'registered':
      case 'challenge':
      case 'updated':
      case 'ack':
        if (!this.#requests.settle(message)) debug('client: dropping %s %d: no request in flight has that id and type', message.type, message.id);
        return;
      case 'incoming':
        void this.#onIncoming(message).catch((error: unknown) => debug('incoming: %s', (error as Error).message));
        return;
      case 'punch':
        return this.#onPunch(message);
      case 'candidates':
        try {
          this.emit('candidates', this.#trickles.receive(message));
        } catch (error) {
          this.emit('rejected', asVerifyError(error));
        }
        return;
      case 'error':
        return this.#onError(message);
      default:
        return;
    }
  }

  #onError(message: ErrorMessage): void {
    // An error answering a request in flight goes to it (a connect's is matched by its id too).
    if (message.id !== undefined && this.#requests.settle({ ...message, id: message.id })) return;
    const error = new RendezvousError(message.code, `rendezvous server: ${message.message}`, { ref: message.ref });
    const pending = message.ref === undefined ? undefined : this.#initiated.get(message.ref);
    if (pending) return pending.reject(error);
    // A session this peer accepted that the server no longer has (its initiator left): no punch will come.
    const accepted = message.ref === undefined ? undefined : this.#accepted.get(message.ref);
    if (accepted && message.code === 'unknown-session') {
      clearTimeout(accepted.timer);
      this.#accepted.delete(message.ref!);
    }
    if (message.code === 'replaced' || message.code === 'shutdown' || message.code === 'registration-timeout') this.#closeReason = error;
    // A server shutting down asks its peers to go elsewhere: leave now rather than when it closes.
    if (message.code === 'shutdown' && this.#ws.readyState === WebSocket.OPEN) this.#ws.close(1001, 'server shutting down');
    debug('client: server error %s: %s', message.code, message.message);
  }

  /**
   * An intent forwarded by the server. Checked in full before anything is sent: the signature
   * against the `from` it names, `to` = this peer, expiry, replay; then the accept policy.
   */
  async #onIncoming(message: IncomingMessage): Promise<void> {
    let intent: IntentBody;
    let session: string | undefined;
    try {
      const claimed = validateIntentBody(peekSigned(message.intent), this.#limits, 'incoming.intent.body');
      session = claimed.session;
      intent = validateIntentBody(openSigned(message.intent, DOMAIN.intent, claimed.from), this.#limits, 'incoming.intent.body');
      if (intent.to !== this.peerId) throw new RendezvousVerifyError('mismatch', `incoming.intent.body.to: ${intent.to}, not this peer`);
      const now = this.#now();
      const tolerance = this.#clockTolerance;
      if (intent.expires + tolerance <= now) {
        throw new RendezvousVerifyError('expired', `incoming.intent.body.expires: ${intent.expires} has passed (now ${now}, tolerance ${tolerance} ms)`);
      }
      if (intent.expires - now > MAX_INTENT_LIFETIME_MS + tolerance) {
        throw new RendezvousVerifyError('expired', `incoming.intent.body.expires: ${intent.expires - now} ms ahead, at most ${MAX_INTENT_LIFETIME_MS + tolerance}`);
      }
      if (this.#accepted.has(session) || this.#initiated.has(session)) {
        throw new RendezvousVerifyError('mismatch', `incoming.intent.body.session: ${session} is already in use`);
      }
      if (this.#accepted.size + this.#deciding >= (this.#options.maxPendingIncoming ?? 32)) {
        throw new RendezvousVerifyError('busy', 'incoming: too many sessions pending');
      }
      // Remembered for as long as the intent could pass the expiry check above.
      const seen = this.#replay.add(`${intent.from} ${intent.nonce}`, intent.expires + this.#clockTolerance);
      if (seen === 'replayed') throw new RendezvousVerifyError('replayed', `incoming.intent.body.nonce: ${intent.nonce} from ${intent.from} was seen before`);
      if (seen === 'full') throw new RendezvousVerifyError('busy', 'incoming: the replay cache is full');
    } catch (error) {
      const rejected = asVerifyError(error);
      this.emit('rejected', rejected);
      if (session !== undefined) this.#send({ type: 'refuse', id: this.#requests.nextId(), session, reason: `${rejected.reason}: ${rejected.message}`.slice(0, 1024) });
      return;
    }
    // Counted (pendingIncoming) from the policy's question until the accept is kept or dropped.
    this.#deciding++;
    try {
      await this.#decide(message, intent, session);
    } finally {
      this.#deciding--;
    }
  }

  /** The accept policy, then the signed accept. */
  async #decide(message: IncomingMessage, intent: IntentBody, session: string): Promise<void> {
    let verdict: boolean | string;
    try {
      verdict = (await this.#options.accept?.(intent.from)) ?? true;
    } catch (error) {
      debug('accept policy threw: %s', (error as Error).message);
      verdict = false;
    }
    if (this.#closed) return;
    if (verdict !== true) {
      const reason = typeof verdict === 'string' && verdict !== '' ? verdict.slice(0, 1024) : 'refused';
      this.#send({ type: 'refuse', id: this.#requests.nextId(), session, reason });
      return;
    }
    const candidates = await this.#localCandidates(intent.transport ?? 'udp');
    if (this.#closed || this.#accepted.has(session)) return;
    const acceptBody: AcceptBody = { session, intentHash: bodyHash(message.intent), candidates: candidates.map(toCandidateRecord), nonce: this.#randomToken() };
    const own = this.#ownReachability();
    if (own.reachable.length) acceptBody.reachable = own.reachable;
    if (own.tcpListen.length) acceptBody.tcpListen = own.tcpListen;
    if (own.natMapping) acceptBody.natMapping = own.natMapping;
    const capabilities = this.#peerCapabilities();
    if (capabilities.length) acceptBody.capabilities = capabilities;
    const accept = signObject(this.#options.identity, DOMAIN.accept, acceptBody);
    const wait = Math.max(0, intent.expires + this.#clockTolerance - this.#now());
    this.#accepted.set(session, {
      from: intent.from, intent: message.intent, accept, intentBody: intent, candidates, own, capabilities,
      timer: setTimeout(() => this.#accepted.delete(session), wait),
    });
    this.#send({ type: 'accept', id: this.#requests.nextId(), accept });
  }

  /**
   * Incoming sessions being decided or accepted and waiting for their punch: what a peer counts,
   * with the punches it runs, against its bound on incoming connections at once.
   */
  get pendingIncoming(): number {
    return this.#accepted.size + this.#deciding;
  }

  #onPunch(message: PunchMessage): void {
    const initiated = this.#initiated.get(message.session);
    if (initiated) {
      try {
        initiated.resolve(this.#verifyAsInitiator(initiated, message));
      } catch (error) {
        const rejected = asVerifyError(error);
        this.emit('rejected', rejected);
        initiated.reject(rejected);
      }
      return;
    }
    const accepted = this.#accepted.get(message.session);
    if (accepted) {
      clearTimeout(accepted.timer);
      this.#accepted.delete(message.session);
      let instruction: PunchInstruction;
      try {
        instruction = this.#verifyAsTarget(accepted, message);
      } catch (error) {
        this.emit('rejected', asVerifyError(error));
        return;
      }
      this.emit('punch', instruction);
      return;
    }
    this.emit('rejected', new RendezvousVerifyError('mismatch', `punch.session: ${message.session} is not a session this peer initiated or accepted`));
  }

  /** The initiator trusts nothing in a punch but the target's signature over the accept. */
  #verifyAsInitiator(pending: Initiated, message: PunchMessage): PunchInstruction {
    if (message.role !== 'controlling') throw new RendezvousVerifyError('mismatch', `punch.role: ${message.role}, but this peer initiated the session`);
    if (message.peer !== pending.target) throw new RendezvousVerifyError('mismatch', `punch.peer: ${message.peer}, expected ${pending.target}`);
    if (!sameSigned(message.intent, pending.intent)) throw new RendezvousVerifyError('mismatch', 'punch.intent: not the intent this peer signed');
    const accept = validateAcceptBody(openSigned(message.accept, DOMAIN.accept, pending.target), this.#limits, 'punch.accept.body');
    if (accept.session !== message.session) throw new RendezvousVerifyError('mismatch', `punch.accept.body.session: ${accept.session}, expected ${message.session}`);
    if (accept.intentHash !== pending.intentHash) throw new RendezvousVerifyError('mismatch', 'punch.accept.body.intentHash: answers a different intent');
    return this.#instruction(message, pending.target, 'controlling', pending.transport,
      signedOffer(accept), { candidates: pending.candidates, ...pending.own, capabilities: pending.capabilities }, pending.resume);
  }

  /** The target verified the intent on arrival; the punch must carry exactly that intent and our accept. */
  #verifyAsTarget(accepted: Accepted, message: PunchMessage): PunchInstruction {
    if (message.role !== 'controlled') throw new RendezvousVerifyError('mismatch', `punch.role: ${message.role}, but this peer was the target`);
    if (message.peer !== accepted.from) throw new RendezvousVerifyError('mismatch', `punch.peer: ${message.peer}, expected ${accepted.from}`);
    if (!sameSigned(message.intent, accepted.intent)) throw new RendezvousVerifyError('mismatch', 'punch.intent: not the intent this peer accepted');
    if (!sameSigned(message.accept, accepted.accept)) throw new RendezvousVerifyError('mismatch', 'punch.accept: not the accept this peer signed');
    const intent = accepted.intentBody;
    return this.#instruction(message, accepted.from, 'controlled', intent.transport ?? 'udp',
      signedOffer(intent), { candidates: accepted.candidates, ...accepted.own, capabilities: accepted.capabilities }, intent.resume);
  }

  /** The punch layer's instruction; the session is opened for trickling (both sides verified each other's offer). */
  #instruction(
    message: PunchMessage, peer: string, role: Role, transport: Transport, remote: SignedOffer, local: SignedOffer, resume: string | undefined,
  ): PunchInstruction {
    const of = (list: SignalledCandidate[], t: CandidateTransport): SignalledCandidate[] => list.filter((c) => c.transport === t);
    this.#trickles.open(message.session, {
      peer, receives: local.capabilities.includes('trickle'), sends: remote.capabilities.includes('trickle'), local: local.candidates,
    });
    return {
      ...(resume !== undefined ? { resume } : {}),
      session: message.session,
      peer,
      role,
      remoteCandidates: of(remote.candidates, 'udp'),
      localCandidates: of(local.candidates, 'udp'),
      remoteTcpCandidates: of(remote.candidates, 'tcp'),
      localTcpCandidates: of(local.candidates, 'tcp'),
      remoteCapabilities: remote.capabilities,
      remoteReachable: reachability(remote.reachable),
      localReachable: reachability(local.reachable),
      ...(remote.natMapping ? { remoteNatMapping: remote.natMapping } : {}),
      ...(local.natMapping ? { localNatMapping: local.natMapping } : {}),
      // Listener endpoints count only with a claim of TCP reachability beside them.
      remoteTcpListen: remote.reachable.includes('tcp') ? remote.tcpListen.map((c) => parseAddress(c)) : [],
      transport,
      key: new Uint8Array(Buffer.from(message.key, 'base64')),
      startAt: this.#now() + Math.min(message.startInMs, this.#options.maxStartDelayMs ?? 5_000),
    };
  }

  /**
   * This peer's candidates for one intent or accept, typed and prioritised (punch/candidate.ts),
   * at most maxCandidates per transport. UDP: the `candidates` option, or privateEndpoints (host)
   * and the proven srflx; TCP: the `tcpCandidates` option.
   */
  async #localCandidates(transport: Transport): Promise<SignalledCandidate[]> {
    const udp = this.#options.candidates
      ? await this.#options.candidates()
      : [...this.#options.privateEndpoints, ...(this.#srflx ? [{ type: 'srflx' as const, address: parseAddress(this.#srflx) }] : [])];
    const tcp = (await this.#options.tcpCandidates?.(transport)) ?? [];
    const typed = [
      ...prioritise(udp.map((c, i) => this.#typed(c, `candidates[${i}]`)), 'udp').slice(0, this.#limits.maxCandidates),
      ...prioritise(tcp.map((c, i) => this.#typed(c, `tcpCandidates[${i}]`)), 'tcp').slice(0, this.#limits.maxCandidates),
    ];
    typed.forEach((c, i) => checkCandidate(c, `candidates[${i}]`));
    return typed;
  }

  /** An "ip:port" string is this peer's own: host if its IP is one of privateEndpoints', else srflx. */
  #typed(candidate: string | LocalCandidate, what: string): LocalCandidate {
    if (typeof candidate !== 'string') return candidate;
    checkEndpoint(candidate, what);
    const address = parseAddress(candidate);
    const hostIps = new Set(this.#options.privateEndpoints.map((e) => parseAddress(e).address));
    return { type: hostIps.has(address.address) ? 'host' : 'srflx', address };
  }

  #ownReachability(): SignedReachability {
    const own = this.#options.reachability?.() ?? { reachable: [], tcpListen: [] };
    own.tcpListen.forEach((c, i) => checkEndpoint(c, `tcpListen[${i}]`));
    return {
      reachable: [...new Set(own.reachable)], tcpListen: [...new Set(own.tcpListen)].slice(0, this.#limits.maxCandidates),
      ...(own.natMapping ? { natMapping: own.natMapping } : {}),
    };
  }
}

const unicast = endpoint();

function checkEndpoint(text: string, what: string): void {
  try {
    unicast(text, what);
  } catch (error) {
    throw new UsageError(`rendezvous: ${(error as Error).message}`);
  }
}

/** A candidate this peer is about to sign must pass the check the other peer will apply. */
function checkCandidate(candidate: SignalledCandidate, what: string): void {
  try {
    candidateRecord(toCandidateRecord(candidate), what);
  } catch (error) {
    throw new UsageError(`rendezvous: ${(error as Error).message}`);
  }
}

/** The candidates, reachability claims and capabilities of the other peer's verified intent or accept. */
function signedOffer(body: IntentBody | AcceptBody): SignedOffer {
  return {
    candidates: body.candidates.map(fromCandidateRecord), reachable: body.reachable ?? [], tcpListen: body.tcpListen ?? [],
    capabilities: knownCapabilities(body.capabilities), ...(body.natMapping ? { natMapping: body.natMapping } : {}),
  };
}

/**
 * The highest version both this client and the hello speak.
 * @throws RendezvousError 'unsupported-version' when there is none
 */
export function negotiateVersion(hello: Pick<HelloMessage, 'version' | 'versions'>): number {
  const offered = hello.versions ?? [hello.version];
  const common = SUPPORTED_VERSIONS.filter((v) => offered.includes(v));
  if (common.length === 0) {
    throw new RendezvousError('unsupported-version',
      `hello.versions: the server speaks version ${offered.join(', ')}, this client speaks ${SUPPORTED_VERSIONS.join(', ')}: upgrade the older side`);
  }
  return Math.max(...common);
}

/** Omit over each member of a union (plain Omit merges the union into one object type). */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function reachability(claims: readonly ReachableTransport[]): Reachability {
  return { udp: claims.includes('udp'), tcp: claims.includes('tcp') };
}

function sameSigned(a: Signed, b: Signed): boolean {
  return a.body === b.body && a.sig === b.sig;
}

function asVerifyError(error: unknown): RendezvousVerifyError {
  if (error instanceof RendezvousVerifyError) return error;
  if (error instanceof RendezvousProtocolError) return new RendezvousVerifyError('invalid', error.message, { cause: error });
  if (NatpunchError.is(error)) return new RendezvousVerifyError('invalid', error.message, { cause: error });
  throw error;
}

function frameBytes(data: RawData): Buffer {
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return NatpunchError.is(reason) ? reason : new AbortedError('rendezvous connect aborted', { cause: reason });
}
