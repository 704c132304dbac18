/**
 * Rendezvous protocol messages, version 2: JSON objects with a `type`, one per WebSocket text
 * frame. Every message is validated on receipt, in both directions: the server does not trust
 * peers, and a peer does not trust the server. See docs/decisions/004-rendezvous-protocol.md.
 */
import { isIPv4 } from 'node:net';
import { PEER_ID_LENGTH } from '../identity/index.js';
import { CANDIDATE_TYPES, type CandidateTransport, type CandidateType, type PortRange, type SignalledCandidate, MAX_PRIORITY, PREDICTION_BUDGET } from '../punch/candidate.js';
import { formatAddress, ipFromBytes, ipToBytes, parseAddress, type TransportAddress } from '../wire/index.js';
import { RendezvousProtocolError } from './errors.js';
import {
  type Check, array, base64, base64url, boolean, integer, invalid, invalidAs, isPlainObject, literal, nullable, object, optional, string,
} from './schema.js';

/**
 * The highest protocol version this code speaks. Version 2: typed candidates, request ids,
 * capabilities, trickled candidates (version 1, with "ip:port" candidates, is not spoken).
 */
export const PROTOCOL_VERSION = 2;
/** Every protocol version this code speaks; hello and register negotiate the highest common one. */
export const SUPPORTED_VERSIONS: readonly number[] = [2];

/**
 * Named optional behaviours, negotiated in hello/register and signed into intents/accepts
 * (RFC 8838 §3 signals trickle support the same way, in the offer and the answer). Names this
 * code does not know are ignored, so a newer peer or server can add some.
 * - 'trickle': sends and receives candidates after the intent/accept (`trickle`/`candidates`).
 * - 'report': tells the server how each of its punched sessions ended (`report`), for the
 *   server's statistics; between peer and server only, never signed into intents or accepts.
 */
export type Capability = 'trickle' | 'report';
export const CAPABILITIES: readonly Capability[] = ['trickle', 'report'];
/** The capabilities that concern the other peer, signed into intents and accepts. */
export const PEER_CAPABILITIES: readonly Capability[] = ['trickle'];

/** How a connection ended, as its peer reports it (`report`). */
export type ReportOutcome = 'connected' | 'failed';
/** The paths a `report` may name (src/path/raw-path.ts PathKind). */
export const REPORTED_PATHS = ['direct-udp', 'direct-tcp', 'relay'] as const;
export type ReportedPath = (typeof REPORTED_PATHS)[number];
/**
 * The techniques a server counts by name (src/peer/establish.ts, src/peer/path-choice.ts,
 * src/peer/relay.ts name them); any other well-formed name is counted as 'other', so what a peer
 * sends cannot grow the server's label sets.
 */
export const REPORTED_TECHNIQUES: readonly string[] = [
  'udp-hole-punch', 'udp-reversal', 'udp-prediction', 'udp-birthday', 'udp-port-mapping', 'udp-lan',
  'tcp-simultaneous-open', 'tcp-reversal', 'tcp-ttl-primed', 'tcp-prediction', 'turn-udp', 'turn-tcp', 'turn-tls',
];

/** The known capabilities among `names`, in CAPABILITIES order. */
export function knownCapabilities(names: readonly string[] | undefined): Capability[] {
  return CAPABILITIES.filter((c) => names?.includes(c));
}

export interface MessageLimits {
  /** Largest frame accepted, in bytes of UTF-8 (default 16 KiB). */
  maxMessageBytes: number;
  /** Most candidates per transport (or private endpoints) in one signed object (default 16). */
  maxCandidates: number;
}

export const DEFAULT_MESSAGE_LIMITS: Readonly<MessageLimits> = Object.freeze({ maxMessageBytes: 16 * 1024, maxCandidates: 16 });

/** A signed object: `sig` is Ed25519 over DOMAIN || the bytes of `body`. See signed.ts. */
export interface Signed {
  /** base64 of the UTF-8 JSON bytes that were signed. */
  body: string;
  /** base64 of the 64-byte Ed25519 signature. */
  sig: string;
}

/** What a peer signs to register: it holds the key of `peerId` and answers this connection's nonce. */
export interface RegisterBody {
  peerId: string;
  /** The server's hello nonce. */
  nonce: string;
  /** The peer's host candidates ("ip:port" of its UDP socket on each interface). */
  privateEndpoints: string[];
  /** What the peer's own STUN Binding (carrying the hello token) reported; null if it has none. */
  srflx: string | null;
  /** The TCP mapping, proven the same way over STUN/TCP; absent or null if not offered. */
  tcp?: string | null;
  /**
   * The port of the peer's reversal listener (an ephemeral TCP port, never L): the server's TCP
   * dial-back connects to the peer's public IP and this port. Absent: no TCP dial-back.
   */
  tcpListenPort?: number;
}

/**
 * What a registered peer signs to move its registration to a new server-reflexive address (its
 * NAT mapping died and came back on another port): proven like `register`, by a STUN Binding
 * carrying the token of the server's `challenge`.
 */
export interface UpdateBody {
  peerId: string;
  /** The nonce of the server's `challenge`: single use. */
  nonce: string;
  /** What the Binding carrying the challenge's token reported. */
  srflx: string;
}

/** A transport over which a peer was found directly reachable by the server's dial-back. */
export type ReachableTransport = 'udp' | 'tcp';

/** What the server's dial-back observed at registration: the server's word, not the peer's. */
export interface Reachability {
  /** A Binding request from another IP and port of the server reached the peer's server-reflexive endpoint and was answered. */
  udp: boolean;
  /** A TCP connection to the peer's public IP and `tcpListenPort` was accepted and answered. */
  tcp: boolean;
}

/** What an initiator signs to ask `to` for a connection. */
export interface IntentBody {
  from: string;
  to: string;
  /** Random, single use: the target's replay cache remembers it until `expires`. */
  nonce: string;
  /** Milliseconds since the epoch after which the intent is void. */
  expires: number;
  /**
   * The only addresses the target may send to, UDP and TCP in one list. TCP candidates are the
   * initiator's TCP mapping and private IPs, all with the local port L of its kept (or short)
   * STUN/TCP connection.
   */
  candidates: CandidateRecord[];
  session: string;
  /**
   * The transport the initiator asks for: 'tcp' (simultaneous open or reversal), 'auto' (race
   * UDP and TCP, see docs/rendezvous-protocol.md); absent means UDP.
   */
  transport?: 'udp' | 'tcp' | 'auto' | 'relay';
  /**
   * The transports over which the initiator is directly reachable (it saw the server's dial-back
   * and the server confirmed it). The other side then dials instead of punching: connection
   * reversal. Absent: none.
   */
  reachable?: ReachableTransport[];
  /** The initiator's reversal listener endpoints (only with 'tcp' in `reachable`). */
  tcpListen?: string[];
  /**
   * Set when the initiator's NAT maps each destination to a new random port (symmetric with
   * random allocation): its mapping toward the target can be neither learnt nor predicted, so a
   * target behind an endpoint-independent NAT may reach it by birthday probing
   * (src/punch/birthday.ts). Absent: anything else, or not known.
   */
  natMapping?: NatMapping;
  /**
   * Set when this session punches new paths for a connection that already exists (its paths
   * went silent: a NAT dropped or moved the mapping): base64 of a 16-byte tag both ends derive
   * from that connection's Noise session (src/path/resume.ts). The target then adds what the
   * punch finds to that connection instead of opening a new one.
   */
  resume?: string;
  /** The capabilities the initiator has for this session (e.g. 'trickle'); unknown names are ignored. */
  capabilities?: string[];
}

/** What the target signs to accept an intent. */
export interface AcceptBody {
  session: string;
  /** base64 SHA-256 of the intent's body bytes: this accept answers that intent and no other. */
  intentHash: string;
  /** The only addresses the initiator may send to, UDP and TCP, as in IntentBody. */
  candidates: CandidateRecord[];
  nonce: string;
  /** As in IntentBody: where the target is directly reachable, and its reversal listener. */
  reachable?: ReachableTransport[];
  tcpListen?: string[];
  /** As in IntentBody. */
  capabilities?: string[];
  /** As in IntentBody. */
  natMapping?: NatMapping;
}

/** What a peer signs about its NAT's mapping when it matters to the other side (IntentBody.natMapping). */
export type NatMapping = 'random-per-destination';

/**
 * A candidate as it travels, inside signed bodies only. The signer says what it is (`kind`),
 * never the receiver's guess. @see RFC 8445 §5.1, RFC 8839 §5.1
 */
export interface CandidateRecord {
  kind: CandidateType;
  transport: CandidateTransport;
  /** The IP in canonical text (as ipFromBytes writes it). */
  address: string;
  port: number;
  /** RFC 8445 §5.1.2.1, component ID 1 (punch/candidate.ts computes it). */
  priority: number;
  /** Only and always on 'predicted': the ports to probe, `port` among them, at most PREDICTION_BUDGET.maxWindow. */
  range?: PortRange;
}

/**
 * Candidates found after the intent or accept (a port mapping, a relay allocation, a
 * prediction), signed by the peer that sends them, for one session. @see RFC 8838 §8-9
 */
export interface TrickleBody {
  session: string;
  /** 1, 2, ...: the receiver drops a seq it has seen (a replay within the session). */
  seq: number;
  candidates: CandidateRecord[];
  /** No more candidates from this peer for this session (RFC 8838 §8.2 end-of-candidates). */
  end?: boolean;
}

export interface HelloMessage {
  type: 'hello';
  /** The highest version the server speaks (what version-1 clients compare with theirs). */
  version: number;
  /** Every version the server speaks; absent: only `version`. */
  versions?: number[];
  /** The capabilities the server offers; unknown names are ignored. */
  capabilities?: string[];
  nonce: string;
  /** USERNAME the peer puts in a STUN Binding to the server, proving its server-reflexive address. */
  token: string;
  /** STUN endpoints; an unspecified IP ("0.0.0.0:3478") means the host of the rendezvous URL. */
  stun: string[];
  serverTime: number;
}

/** Every message a peer sends carries an `id`; the server's answer to it (or error about it) echoes it. */
interface Request {
  /** Chosen by the peer, unique among its requests in flight. */
  id: number;
}

export interface RegisterMessage extends Request {
  type: 'register';
  /** The version the peer chose: the highest one both it and hello's `versions` speak. */
  version: number;
  /** The capabilities the peer wants, among hello's; unknown names are ignored. */
  capabilities: string[];
  signed: Signed;
}

export interface RegisteredMessage extends Request {
  type: 'registered';
  /** The negotiated version (the register's). */
  version: number;
  /** The negotiated capabilities: offered by the server, asked for by the peer, known to the server. */
  capabilities: string[];
  peerId: string;
  srflx: string | null;
  /** What the server's STUN port saw for this connection's token, proven or not (null: nothing). */
  observedSrflx: string | null;
  /** The server's dial-back result; absent from servers that do not dial back. */
  reachable?: Reachability;
  /** TURN relays this peer may use, with credentials minted for it; absent when the server offers none. */
  relays?: RelayOffer[];
}

/**
 * A TURN server and credentials for it, in the shape WebRTC's RTCIceServer made familiar:
 * `turn:HOST:PORT?transport=udp|tcp` and `turns:HOST:PORT?transport=tcp` URLs (RFC 7065).
 * Credentials are the REST scheme's (src/turn/rest-credentials.ts): they expire on their own.
 */
export interface RelayOffer {
  urls: string[];
  username: string;
  password: string;
}

/** Asks for a `challenge`: a fresh token to prove a new server-reflexive address with. */
export interface RefreshMessage extends Request {
  type: 'refresh';
}

export interface ChallengeMessage extends Request {
  type: 'challenge';
  nonce: string;
  /** USERNAME of the STUN Binding proving the new address, as hello's token. */
  token: string;
}

export interface UpdateMessage extends Request {
  type: 'update';
  signed: Signed;
}

export interface UpdatedMessage extends Request {
  type: 'updated';
  srflx: string;
}

export interface ConnectMessage extends Request {
  type: 'connect';
  intent: Signed;
}

export interface IncomingMessage {
  type: 'incoming';
  intent: Signed;
}

export interface AcceptMessage extends Request {
  type: 'accept';
  accept: Signed;
}

export interface RefuseMessage extends Request {
  type: 'refuse';
  session: string;
  reason: string;
}

export type Role = 'controlling' | 'controlled';

export interface PunchMessage {
  type: 'punch';
  session: string;
  /** The other peer's id. */
  peer: string;
  /** The initiator is controlling (it nominates), the target controlled. @see RFC 8445 §6.1.1 */
  role: Role;
  intent: Signed;
  accept: Signed;
  /** base64 of 32 random bytes: the MESSAGE-INTEGRITY key of this session's connectivity checks. */
  key: string;
  /** Wait this long after receipt before the first packet, so that both sides start together. */
  startInMs: number;
}

export interface ErrorMessage {
  type: 'error';
  code: string;
  message: string;
  /** The request this error answers; absent: about the connection, not one request. */
  id?: number;
  /** The session (or other id) this error is about. */
  ref?: string;
}

/** Candidates a peer found after its intent or accept, for the other peer of `session`. */
export interface TrickleMessage extends Request {
  type: 'trickle';
  session: string;
  /** Signed<TrickleBody> by the sender, domain `natpunch/1 trickle`. */
  signed: Signed;
}

/** A `trickle` forwarded to the other peer of the session. */
export interface CandidatesMessage {
  type: 'candidates';
  session: string;
  signed: Signed;
}

/**
 * How a punched session ended for the peer sending it: statistics for the server (the dashboard's
 * success by technique), the peer's own word, unsigned. At most one per peer per session, within
 * the session's trickle window; only with the 'report' capability.
 */
export interface ReportMessage extends Request {
  type: 'report';
  session: string;
  outcome: ReportOutcome;
  /** For 'connected': the path the stream runs on when the connection is ready. */
  path?: ReportedPath;
  /** For 'connected': how that path was found ('udp-hole-punch', 'turn-udp', …). */
  technique?: string;
  /** From the connect call (initiator) or the punch (target) to a secure stream or the failure, ms. */
  ms: number;
}

/** A request that has no other answer (`trickle`, `report`) was done. */
export interface AckMessage extends Request {
  type: 'ack';
}

export type ClientMessage = RegisterMessage | ConnectMessage | AcceptMessage | RefuseMessage | RefreshMessage | UpdateMessage | TrickleMessage | ReportMessage;
export type ServerMessage = HelloMessage | RegisteredMessage | IncomingMessage | PunchMessage | ErrorMessage | ChallengeMessage | UpdatedMessage
  | CandidatesMessage | AckMessage;
export type ParsedMessage = ClientMessage | ServerMessage;

export const CLIENT_MESSAGE_TYPES: ReadonlySet<string> = new Set<ClientMessage['type']>(['register', 'connect', 'accept', 'refuse', 'refresh', 'update', 'trickle', 'report']);
export const SERVER_MESSAGE_TYPES: ReadonlySet<string> = new Set<ServerMessage['type']>(['hello', 'registered', 'incoming', 'punch', 'error', 'challenge', 'updated', 'candidates', 'ack']);

/** Longest reason or message text carried. */
const MAX_TEXT = 1024;
/** Longest intent lifetime anyone accepts, so replay caches stay bounded in time. */
export const MAX_INTENT_LIFETIME_MS = 120_000;

const PEER_ID_SHAPE = new RegExp(`^[a-z2-7]{${PEER_ID_LENGTH}}$`);

/**
 * A peer id's spelling: 56 lower-case base32 characters. Its version and checksum are checked
 * where they matter, not here: an id whose key is used is parsed in full as the key is taken
 * (publicKeyFromPeerId: a registration's signer, an incoming intent's sender, the peer a Noise
 * handshake must prove), and one a server only compares or looks up (an intent's `from` and
 * `to`) either names a registered peer, whose id was parsed when it registered, or is refused
 * (the refusal then says whether it has a typo). Checking the two checksums of every intent here
 * was ~6% of a brokered connect's server CPU.
 */
export const peerId: Check<string> = (value, path) => {
  if (typeof value !== 'string' || !PEER_ID_SHAPE.test(value)) {
    invalid(path, `a peer id (${PEER_ID_LENGTH} lower-case base32 characters)`, value);
  }
  return value;
};

/** 16 random bytes, base64url: nonces, tokens. */
export const nonce: Check<string> = base64url(16);
export const sessionId: Check<string> = string({ min: 16, max: 64, pattern: /^[A-Za-z0-9_-]+$/, expected: 'a session id of 16-64 base64url characters' });
const code: Check<string> = string({ min: 1, max: 64, pattern: /^[a-z0-9-]+$/, expected: 'a code of 1-64 characters a-z, 0-9, -' });
const text: Check<string> = string({ max: MAX_TEXT });

/**
 * An "ip:port" a peer may be told to send to: canonical text (as formatAddress writes it), a
 * port other than 0, and an IP that names one host: not unspecified, multicast or broadcast.
 * Classified from the parsed bytes, never from the text (STYLE §7).
 */
export function endpoint(options: { allowUnspecified?: boolean } = {}): Check<string> {
  const expected = options.allowUnspecified ? 'an "ip:port" endpoint' : 'a unicast "ip:port" endpoint';
  return (value, path) => {
    if (typeof value !== 'string' || value.length > 64) invalid(path, expected, value);
    let address: TransportAddress;
    try {
      address = parseAddress(value);
    } catch {
      return invalid(path, expected, value);
    }
    if (formatAddress(address) !== value) invalid(path, `${expected} in canonical form ("${formatAddress(address)}")`, value);
    if (address.port === 0) invalid(path, `${expected} with a port other than 0`, value);
    const kind = classify(address.address);
    if (kind === 'multicast' || kind === 'broadcast' || (kind === 'unspecified' && !options.allowUnspecified)) {
      invalid(path, `${expected}, not ${kind}`, value);
    }
    return value;
  };
}

/** What kind of IP address this is, as far as "may a peer be aimed at it" goes. */
export function classify(ip: string): 'unspecified' | 'multicast' | 'broadcast' | 'unicast' {
  const bytes = ipToBytes(ip);
  if (bytes.every((b) => b === 0)) return 'unspecified';
  if (isIPv4(ip)) {
    if (bytes[0]! >= 224 && bytes[0]! <= 239) return 'multicast';
    if (bytes.every((b) => b === 255)) return 'broadcast';
    return 'unicast';
  }
  // IPv4-mapped IPv6 (::ffff:a.b.c.d) names an IPv4 host: judge the embedded address.
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return classify(`${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`);
  }
  return bytes[0] === 0xff ? 'multicast' : 'unicast';
}

export { unmappedIp } from '../wire/index.js';

/** An IP a peer may be aimed at: canonical text (as ipFromBytes writes it), unicast, judged from its bytes. */
export const unicastIp: Check<string> = (value, path) => {
  const expected = 'a unicast IP address';
  if (typeof value !== 'string' || value.length > 45) return invalid(path, expected, value);
  let canonical: string;
  try {
    canonical = ipFromBytes(ipToBytes(value));
  } catch {
    return invalid(path, expected, value);
  }
  if (canonical !== value) invalid(path, `${expected} in canonical form ("${canonical}")`, value);
  const kind = classify(value);
  if (kind !== 'unicast') invalid(path, `${expected}, not ${kind}`, value);
  return value;
};

const port = integer(1, 65_535);

/**
 * One typed candidate: kind and transport from their lists, a unicast IP, a port, a priority
 * with component ID 1 (RFC 8445 §5.1.2.1: a positive integer below 2^31, low 8 bits 256 − 1),
 * and a range on 'predicted' candidates only, holding the port and within the probing budget.
 */
export const candidateRecord: Check<CandidateRecord> = (value, path) => {
  const c = object<CandidateRecord>({
    kind: literal(...CANDIDATE_TYPES), transport: literal('udp', 'tcp'), address: unicastIp, port, priority: integer(1, MAX_PRIORITY),
    range: optional(object<PortRange>({ first: port, last: port })),
  })(value, path);
  if (c.priority % 256 !== 255) invalid(`${path}.priority`, 'a priority of component 1 (RFC 8445 §5.1.2.1: low 8 bits 255)', c.priority);
  if (c.kind !== 'predicted') {
    if (c.range !== undefined) invalid(`${path}.range`, `no range on a ${c.kind} candidate (only predicted ones have one)`, c.range);
    return c;
  }
  const range = c.range ?? invalid(`${path}.range`, 'the port range of a predicted candidate', undefined);
  const size = range.last - range.first + 1;
  if (range.first > c.port || c.port > range.last) invalidAs(`${path}.range`, `first <= port (${c.port}) <= last`, `${range.first}..${range.last}`);
  if (size > PREDICTION_BUDGET.maxWindow) invalidAs(`${path}.range`, `at most ${PREDICTION_BUDGET.maxWindow} ports`, `${size} ports (${range.first}..${range.last})`);
  return c;
};

/**
 * A signed list of candidates, UDP and TCP together: at most `maxCandidates` per transport (the
 * punch layer's budgets assume it), at most PREDICTION_BUDGET.maxCandidates predicted ones, each
 * transport address once.
 */
function candidateList(limits: MessageLimits): Check<CandidateRecord[]> {
  const list = array(candidateRecord, { max: 2 * limits.maxCandidates });
  return (value, path) => {
    const out = list(value, path);
    const seen = new Set<string>();
    const count = { udp: 0, tcp: 0, predicted: 0 };
    out.forEach((c, i) => {
      const key = `${c.transport} ${c.address} ${c.port}`;
      if (seen.has(key)) invalidAs(`${path}[${i}]`, 'each transport address once', `${c.transport} ${c.address} port ${c.port} again`);
      seen.add(key);
      if (++count[c.transport] > limits.maxCandidates) invalidAs(path, `at most ${limits.maxCandidates} ${c.transport} candidates`, `${count[c.transport]} or more`);
      if (c.kind === 'predicted' && ++count.predicted > PREDICTION_BUDGET.maxCandidates) {
        invalidAs(path, `at most ${PREDICTION_BUDGET.maxCandidates} predicted candidates`, `${count.predicted} or more`);
      }
    });
    return out;
  };
}

/** The wire form of a candidate this peer signs. */
export function toCandidateRecord(c: SignalledCandidate): CandidateRecord {
  const record: CandidateRecord = { kind: c.type, transport: c.transport, address: c.address.address, port: c.address.port, priority: c.priority };
  if (c.range) record.range = { first: c.range.first, last: c.range.last };
  return record;
}

/** A validated wire candidate as the punch layer takes it. */
export function fromCandidateRecord(r: CandidateRecord): SignalledCandidate {
  const address: TransportAddress = { family: isIPv4(r.address) ? 4 : 6, address: r.address, port: r.port };
  return { type: r.kind, transport: r.transport, address, priority: r.priority, ...(r.range ? { range: { ...r.range } } : {}) };
}

/** turn:/turns: URL of RFC 7065: host (IPv4, [IPv6] or a name), optional port, optional transport. */
const relayUrl = string({ min: 6, max: 300, pattern: /^turns?:(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?(?:\?transport=(?:udp|tcp))?$/, expected: 'a turn: or turns: URL (RFC 7065)' });
const capability = string({ min: 1, max: 32, pattern: /^[a-z0-9-]+$/, expected: 'a capability name of 1-32 characters a-z, 0-9, -' });
const capabilities = array(capability, { max: 32 });
const requestId = integer(1, Number.MAX_SAFE_INTEGER);
const version = integer(1, 65_535);
const technique = string({ min: 1, max: 32, pattern: /^[a-z0-9-]+$/, expected: 'a technique name of 1-32 characters a-z, 0-9, -' });

/** A `report`: 'connected' names its path and technique, 'failed' neither. */
const report: Check<ReportMessage> = (value, path) => {
  const message = object<ReportMessage>({
    type: literal('report'), id: requestId, session: sessionId, outcome: literal<ReportOutcome>('connected', 'failed'),
    path: optional(literal<ReportedPath>(...REPORTED_PATHS)), technique: optional(technique), ms: integer(0, 600_000),
  })(value, path);
  const named = message.path !== undefined && message.technique !== undefined;
  const none = message.path === undefined && message.technique === undefined;
  if (message.outcome === 'connected' && !named) return invalid(`${path}.path`, 'a path and a technique for outcome "connected"', message.path);
  if (message.outcome === 'failed' && !none) return invalid(`${path}.path`, 'no path or technique for outcome "failed"', message.path ?? message.technique);
  return message;
};

interface Schemas {
  signed: Check<Signed>;
  registerBody: Check<RegisterBody>;
  updateBody: Check<UpdateBody>;
  intentBody: Check<IntentBody>;
  acceptBody: Check<AcceptBody>;
  trickleBody: Check<TrickleBody>;
  messages: Record<ParsedMessage['type'], Check<ParsedMessage>>;
}

function buildSchemas(limits: MessageLimits): Schemas {
  const unicast = endpoint();
  const endpoints = array(unicast, { max: limits.maxCandidates });
  const candidates = candidateList(limits);
  const signed = object<Signed>({ body: base64({ min: 2, max: limits.maxMessageBytes }), sig: base64(64) });
  const timestamp = integer(0, Number.MAX_SAFE_INTEGER);
  const reachable = array(literal<ReachableTransport>('udp', 'tcp'), { max: 2 });
  const messages: { [K in ParsedMessage['type']]: Check<Extract<ParsedMessage, { type: K }>> } = {
    hello: object<HelloMessage>({
      type: literal('hello'), version, versions: optional(array(version, { min: 1, max: 16 })), capabilities: optional(capabilities),
      nonce, token: nonce, stun: array(endpoint({ allowUnspecified: true }), { max: limits.maxCandidates }), serverTime: timestamp,
    }),
    register: object<RegisterMessage>({ type: literal('register'), id: requestId, version, capabilities, signed }),
    registered: object<RegisteredMessage>({
      type: literal('registered'), id: requestId, version, capabilities, peerId, srflx: nullable(unicast), observedSrflx: nullable(unicast),
      reachable: optional(object<Reachability>({ udp: boolean, tcp: boolean })),
      relays: optional(array(object<RelayOffer>({ urls: array(relayUrl, { min: 1, max: 8 }), username: text, password: text }), { max: 4 })),
    }),
    connect: object<ConnectMessage>({ type: literal('connect'), id: requestId, intent: signed }),
    incoming: object<IncomingMessage>({ type: literal('incoming'), intent: signed }),
    accept: object<AcceptMessage>({ type: literal('accept'), id: requestId, accept: signed }),
    refuse: object<RefuseMessage>({ type: literal('refuse'), id: requestId, session: sessionId, reason: text }),
    punch: object<PunchMessage>({
      type: literal('punch'), session: sessionId, peer: peerId, role: literal('controlling', 'controlled'),
      intent: signed, accept: signed, key: base64(32), startInMs: integer(0, 60_000),
    }),
    refresh: object<RefreshMessage>({ type: literal('refresh'), id: requestId }),
    challenge: object<ChallengeMessage>({ type: literal('challenge'), id: requestId, nonce, token: nonce }),
    update: object<UpdateMessage>({ type: literal('update'), id: requestId, signed }),
    updated: object<UpdatedMessage>({ type: literal('updated'), id: requestId, srflx: unicast }),
    error: object<ErrorMessage>({
      type: literal('error'), code, message: text, id: optional(requestId), ref: optional(string({ max: 128 })),
    }),
    trickle: object<TrickleMessage>({ type: literal('trickle'), id: requestId, session: sessionId, signed }),
    candidates: object<CandidatesMessage>({ type: literal('candidates'), session: sessionId, signed }),
    ack: object<AckMessage>({ type: literal('ack'), id: requestId }),
    report: report,
  };
  return {
    signed,
    registerBody: object<RegisterBody>({
      peerId, nonce, privateEndpoints: endpoints, srflx: nullable(unicast), tcp: optional(nullable(unicast)),
      tcpListenPort: optional(port),
    }),
    updateBody: object<UpdateBody>({ peerId, nonce, srflx: unicast }),
    intentBody: object<IntentBody>({
      from: peerId, to: peerId, nonce, expires: timestamp, candidates, session: sessionId,
      transport: optional(literal('udp', 'tcp', 'auto', 'relay')), reachable: optional(reachable), tcpListen: optional(endpoints),
      resume: optional(base64(16)), capabilities: optional(capabilities), natMapping: optional(literal('random-per-destination')),
    }),
    acceptBody: object<AcceptBody>({
      session: sessionId, intentHash: base64(32), candidates, nonce, reachable: optional(reachable), tcpListen: optional(endpoints),
      capabilities: optional(capabilities), natMapping: optional(literal('random-per-destination')),
    }),
    trickleBody: object<TrickleBody>({ session: sessionId, seq: integer(1, Number.MAX_SAFE_INTEGER), candidates, end: optional(literal(true)) }),
    messages,
  };
}

const cache = new WeakMap<object, Schemas>();
function schemas(limits: MessageLimits): Schemas {
  let s = cache.get(limits);
  if (!s) cache.set(limits, (s = buildSchemas(limits)));
  return s;
}

/**
 * Checks that `message` (already parsed from JSON) is a well-formed message of a known type and
 * returns a copy holding only the known fields.
 * @throws RendezvousProtocolError with reason 'unknown-type' or 'invalid'
 */
export function validate(message: unknown, limits: MessageLimits = DEFAULT_MESSAGE_LIMITS): ParsedMessage {
  if (!isPlainObject(message)) return invalid('message', 'an object', message);
  const type = message['type'];
  if (typeof type !== 'string') return invalid('message.type', 'a string', type);
  const check = Object.hasOwn(schemas(limits).messages, type) ? schemas(limits).messages[type as ParsedMessage['type']] : undefined;
  if (!check) {
    const shown = type.length > 32 ? `${JSON.stringify(type.slice(0, 32))}...` : JSON.stringify(type);
    throw new RendezvousProtocolError('unknown-type', `message.type: unknown type ${shown}`);
  }
  return check(message, type);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * One text frame's JSON, not yet validated: size limit, UTF-8, JSON.
 * @throws RendezvousProtocolError ('too-large', 'bad-json')
 */
export function parseFrame(frame: string | Uint8Array, limits: MessageLimits = DEFAULT_MESSAGE_LIMITS): unknown {
  const size = typeof frame === 'string' ? Buffer.byteLength(frame) : frame.byteLength;
  if (size > limits.maxMessageBytes) {
    throw new RendezvousProtocolError('too-large', `message: ${size} bytes, at most ${limits.maxMessageBytes}`);
  }
  try {
    return JSON.parse(typeof frame === 'string' ? frame : utf8.decode(frame));
  } catch (error) {
    throw new RendezvousProtocolError('bad-json', `message: not JSON (${(error as Error).message})`);
  }
}

/**
 * Parses one text frame: `parseFrame`, then `validate`.
 * @throws RendezvousProtocolError ('too-large', 'bad-json', 'unknown-type', 'invalid')
 */
export function parseMessage(frame: string | Uint8Array, limits: MessageLimits = DEFAULT_MESSAGE_LIMITS): ParsedMessage {
  return validate(parseFrame(frame, limits), limits);
}

export function validateRegisterBody(value: unknown, limits: MessageLimits = DEFAULT_MESSAGE_LIMITS): RegisterBody {
  return schemas(limits).registerBody(value, 'register.signed.body');
}

export function validateUpdateBody(value: unknown, limits: MessageLimits = DEFAULT_MESSAGE_LIMITS): UpdateBody {
  return schemas(limits).updateBody(value, 'update.signed.body');
}

export function validateIntentBody(value: unknown, limits: MessageLimits = DEFAULT_MESSAGE_LIMITS, path = 'intent.body'): IntentBody {
  return schemas(limits).intentBody(value, path);
}

export function validateAcceptBody(value: unknown, limits: MessageLimits = DEFAULT_MESSAGE_LIMITS, path = 'accept.body'): AcceptBody {
  return schemas(limits).acceptBody(value, path);
}

export function validateTrickleBody(value: unknown, limits: MessageLimits = DEFAULT_MESSAGE_LIMITS, path = 'trickle.signed.body'): TrickleBody {
  return schemas(limits).trickleBody(value, path);
}

/** One frame's text. */
export function encodeMessage(message: ParsedMessage): string {
  return JSON.stringify(message);
}
