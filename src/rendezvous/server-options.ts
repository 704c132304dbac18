/**
 * What a rendezvous node is given and what it reports: its limits (every per-client structure
 * is bounded and expires; decisions 004 and 015), its options, and its counters. Kept apart from
 * the server itself (server.ts) so the knobs an operator reads are in one short file.
 */
import type { StunServer } from '../stun/server.js';
import type { DialBackOptions } from './dial-back.js';
import { type Capability, type MessageLimits, type RelayOffer, DEFAULT_MESSAGE_LIMITS } from './messages.js';
import type { StartTimingOptions } from './punch-timing.js';
import type { ReflexiveObserver } from './reflexive-observer.js';
import type { Registry } from './registry.js';
import type { SignalBus } from './signal-bus.js';
import { DEFAULT_TRICKLE_LIMITS } from './trickle.js';

/**
 * What one rendezvous node lets each socket, peer, pair and address hold, and for how long
 * (decisions 004 and 015): every per-client structure is bounded and expires.
 */
export interface RendezvousLimits extends MessageLimits {
  /** Open WebSockets, registered or not (default 120000; raise the fd limit to match). Beyond it the upgrade gets 503. */
  maxConnections: number;
  /** Open WebSockets from one IP address (default 256: many peers may share one NAT). */
  maxConnectionsPerAddress: number;
  /**
   * WebSockets that have not registered yet (default 10000): their own budget, so that sockets
   * which never register cannot crowd registrations out. When it is full a newcomer takes the
   * place of the oldest such socket of the address holding the most (which gets `error
   * server-full`, close 1013), unless the newcomer's address holds as many.
   */
  maxUnregistered: number;
  /** WebSockets not registered yet from one IP address (default 64); beyond it the upgrade gets 503. */
  maxUnregisteredPerAddress: number;
  /** Registered peers (default 100000). */
  maxPeers: number;
  /**
   * Sessions one peer may have pending, as initiator or as target (default 8). When a target's
   * are full, a new initiator takes the place of the oldest session of the initiator holding
   * the most there (that one gets `error too-many-pending`), unless it holds as many itself.
   */
  maxPendingIntents: number;
  /** Sessions pending between one initiator and one target (default 1). */
  maxPendingPerPair: number;
  /** How long a pending session waits for the target's answer, whatever the intent's expiry (default 10 s). */
  pendingTimeoutMs: number;
  /** Token bucket per initiator for `connect`: sustained intents per second (default 2) and burst (default 10). */
  intentsPerSecond: number;
  /** The burst of that bucket (default 10). */
  intentBurst: number;
  /** Token bucket per initiator-target pair: sustained intents per minute (default 12) and burst (default 4). */
  pairIntentsPerMinute: number;
  /** The burst of that bucket (default 4). */
  pairIntentBurst: number;
  /** Initiator-target pairs whose bucket is refilling, kept at once (default 100000); beyond it intents get `rate-limited`. */
  maxRatePairs: number;
  /** Sessions pending on the whole server (default 10000). */
  maxSessions: number;
  /**
   * Punched sessions kept for trickled candidates and reports, each for trickleWindowMs (default
   * 200000: 30 s of 6,600 connects per second). Beyond it a session is not kept:
   * its trickles and report get `unknown-session`.
   */
  maxPunchedSessions: number;
  /** Token bucket per socket: sustained messages per second (default 20) and burst (default 40). */
  messagesPerSecond: number;
  /** The burst of that bucket (default 40). */
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
  /** The burst of that bucket (default 4). */
  trickleBurst: number;
}

export const DEFAULT_RENDEZVOUS_LIMITS: Readonly<RendezvousLimits> = Object.freeze({
  ...DEFAULT_MESSAGE_LIMITS,
  maxConnections: 120_000,
  maxConnectionsPerAddress: 256,
  maxUnregistered: 10_000,
  maxUnregisteredPerAddress: 64,
  maxPeers: 100_000,
  maxPendingIntents: 8,
  maxPendingPerPair: 1,
  pendingTimeoutMs: 10_000,
  intentsPerSecond: 2,
  intentBurst: 10,
  pairIntentsPerMinute: 12,
  pairIntentBurst: 4,
  maxRatePairs: 100_000,
  maxSessions: 10_000,
  maxPunchedSessions: 200_000,
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
  /** This node's name in registry records (default: the bus's node, else "local"). */
  nodeId?: string;
  /**
   * How this node reaches peers registered on other nodes sharing `registry` (default: none
   * besides itself, an InMemorySignalBus of its own). Closed by close() only if not given.
   */
  bus?: SignalBus;
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
