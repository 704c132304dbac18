/**
 * Rendezvous protocol messages, version 1: JSON objects with a `type`, one per WebSocket text
 * frame. Every message is validated on receipt, in both directions: the server does not trust
 * peers, and a peer does not trust the server. See docs/decisions/004-rendezvous-protocol.md.
 */
import { isIPv4 } from 'node:net';
import { isPeerId, PEER_ID_LENGTH } from '../identity/index.js';
import { formatAddress, ipFromBytes, ipToBytes, parseAddress, type TransportAddress } from '../wire/index.js';
import { RendezvousProtocolError } from './errors.js';
import {
  type Check, array, base64, base64url, boolean, integer, invalid, isPlainObject, literal, nullable, object, optional, string,
} from './schema.js';

export const PROTOCOL_VERSION = 1;

export interface MessageLimits {
  /** Largest frame accepted, in bytes of UTF-8 (default 16 KiB). */
  maxMessageBytes: number;
  /** Most candidates (or private endpoints) in one signed object (default 16). */
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
  /** The only addresses the target may send to. */
  candidates: string[];
  session: string;
  /**
   * The initiator's TCP candidates: its TCP mapping and private IPs, all with the local port L
   * of its kept STUN/TCP connection (absent from peers that do not punch TCP).
   */
  tcpCandidates?: string[];
  /**
   * The transport the initiator asks for: 'tcp' (simultaneous open or reversal), 'auto' (race
   * UDP and TCP, see docs/rendezvous-protocol.md); absent means UDP.
   */
  transport?: 'udp' | 'tcp' | 'auto';
  /**
   * The transports over which the initiator is directly reachable (it saw the server's dial-back
   * and the server confirmed it). The other side then dials instead of punching: connection
   * reversal. Absent: none.
   */
  reachable?: ReachableTransport[];
  /** The initiator's reversal listener endpoints (only with 'tcp' in `reachable`). */
  tcpListen?: string[];
  /**
   * Set when this session punches new paths for a connection that already exists (its paths
   * went silent: a NAT dropped or moved the mapping): base64 of a 16-byte tag both ends derive
   * from that connection's Noise session (src/path/resume.ts). The target then adds what the
   * punch finds to that connection instead of opening a new one.
   */
  resume?: string;
}

/** What the target signs to accept an intent. */
export interface AcceptBody {
  session: string;
  /** base64 SHA-256 of the intent's body bytes: this accept answers that intent and no other. */
  intentHash: string;
  /** The only addresses the initiator may send to. */
  candidates: string[];
  nonce: string;
  /** The target's TCP candidates, as in IntentBody. */
  tcpCandidates?: string[];
  /** As in IntentBody: where the target is directly reachable, and its reversal listener. */
  reachable?: ReachableTransport[];
  tcpListen?: string[];
}

export interface HelloMessage {
  type: 'hello';
  version: typeof PROTOCOL_VERSION;
  nonce: string;
  /** USERNAME the peer puts in a STUN Binding to the server, proving its server-reflexive address. */
  token: string;
  /** STUN endpoints; an unspecified IP ("0.0.0.0:3478") means the host of the rendezvous URL. */
  stun: string[];
  serverTime: number;
}

export interface RegisterMessage {
  type: 'register';
  signed: Signed;
}

export interface RegisteredMessage {
  type: 'registered';
  peerId: string;
  srflx: string | null;
  /** What the server's STUN port saw for this connection's token, proven or not (null: nothing). */
  observedSrflx: string | null;
  /** The server's dial-back result; absent from servers that do not dial back. */
  reachable?: Reachability;
}

/** Asks for a `challenge`: a fresh token to prove a new server-reflexive address with. */
export interface RefreshMessage {
  type: 'refresh';
}

export interface ChallengeMessage {
  type: 'challenge';
  nonce: string;
  /** USERNAME of the STUN Binding proving the new address, as hello's token. */
  token: string;
}

export interface UpdateMessage {
  type: 'update';
  signed: Signed;
}

export interface UpdatedMessage {
  type: 'updated';
  srflx: string;
}

export interface ConnectMessage {
  type: 'connect';
  intent: Signed;
}

export interface IncomingMessage {
  type: 'incoming';
  intent: Signed;
}

export interface AcceptMessage {
  type: 'accept';
  accept: Signed;
}

export interface RefuseMessage {
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
  /** The session (or other id) this error is about. */
  ref?: string;
}

export type ClientMessage = RegisterMessage | ConnectMessage | AcceptMessage | RefuseMessage | RefreshMessage | UpdateMessage;
export type ServerMessage = HelloMessage | RegisteredMessage | IncomingMessage | PunchMessage | ErrorMessage | ChallengeMessage | UpdatedMessage;
export type ParsedMessage = ClientMessage | ServerMessage;

export const CLIENT_MESSAGE_TYPES: ReadonlySet<string> = new Set<ClientMessage['type']>(['register', 'connect', 'accept', 'refuse', 'refresh', 'update']);
export const SERVER_MESSAGE_TYPES: ReadonlySet<string> = new Set<ServerMessage['type']>(['hello', 'registered', 'incoming', 'punch', 'error', 'challenge', 'updated']);

/** Longest reason or message text carried. */
const MAX_TEXT = 1024;
/** Longest intent lifetime anyone accepts, so replay caches stay bounded in time. */
export const MAX_INTENT_LIFETIME_MS = 120_000;

export const peerId: Check<string> = (value, path) => {
  if (typeof value !== 'string' || value.length !== PEER_ID_LENGTH || value !== value.toLowerCase() || !isPeerId(value)) {
    invalid(path, `a peer id (${PEER_ID_LENGTH} lower-case base32 characters with a valid checksum)`, value);
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

/** "::ffff:1.2.3.4" -> "1.2.3.4"; other addresses in canonical form; undefined if not an IP. */
export function unmappedIp(ip: string): string | undefined {
  try {
    const bytes = ipToBytes(ip);
    const mapped = bytes.length === 16 && bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
    return ipFromBytes(mapped ? bytes.subarray(12) : bytes);
  } catch {
    return undefined;
  }
}

interface Schemas {
  signed: Check<Signed>;
  registerBody: Check<RegisterBody>;
  updateBody: Check<UpdateBody>;
  intentBody: Check<IntentBody>;
  acceptBody: Check<AcceptBody>;
  messages: Record<ParsedMessage['type'], Check<ParsedMessage>>;
}

function buildSchemas(limits: MessageLimits): Schemas {
  const unicast = endpoint();
  const candidates = array(unicast, { max: limits.maxCandidates });
  const signed = object<Signed>({ body: base64({ min: 2, max: limits.maxMessageBytes }), sig: base64(64) });
  const timestamp = integer(0, Number.MAX_SAFE_INTEGER);
  const reachable = array(literal<ReachableTransport>('udp', 'tcp'), { max: 2 });
  const messages: { [K in ParsedMessage['type']]: Check<Extract<ParsedMessage, { type: K }>> } = {
    hello: object<HelloMessage>({
      type: literal('hello'), version: literal(PROTOCOL_VERSION), nonce, token: nonce,
      stun: array(endpoint({ allowUnspecified: true }), { max: limits.maxCandidates }), serverTime: timestamp,
    }),
    register: object<RegisterMessage>({ type: literal('register'), signed }),
    registered: object<RegisteredMessage>({
      type: literal('registered'), peerId, srflx: nullable(unicast), observedSrflx: nullable(unicast),
      reachable: optional(object<Reachability>({ udp: boolean, tcp: boolean })),
    }),
    connect: object<ConnectMessage>({ type: literal('connect'), intent: signed }),
    incoming: object<IncomingMessage>({ type: literal('incoming'), intent: signed }),
    accept: object<AcceptMessage>({ type: literal('accept'), accept: signed }),
    refuse: object<RefuseMessage>({ type: literal('refuse'), session: sessionId, reason: text }),
    punch: object<PunchMessage>({
      type: literal('punch'), session: sessionId, peer: peerId, role: literal('controlling', 'controlled'),
      intent: signed, accept: signed, key: base64(32), startInMs: integer(0, 60_000),
    }),
    refresh: object<RefreshMessage>({ type: literal('refresh') }),
    challenge: object<ChallengeMessage>({ type: literal('challenge'), nonce, token: nonce }),
    update: object<UpdateMessage>({ type: literal('update'), signed }),
    updated: object<UpdatedMessage>({ type: literal('updated'), srflx: unicast }),
    error: object<ErrorMessage>({ type: literal('error'), code, message: text, ref: optional(string({ max: 128 })) }),
  };
  return {
    signed,
    registerBody: object<RegisterBody>({
      peerId, nonce, privateEndpoints: candidates, srflx: nullable(unicast), tcp: optional(nullable(unicast)),
      tcpListenPort: optional(integer(1, 65_535)),
    }),
    updateBody: object<UpdateBody>({ peerId, nonce, srflx: unicast }),
    intentBody: object<IntentBody>({
      from: peerId, to: peerId, nonce, expires: timestamp, candidates, session: sessionId,
      tcpCandidates: optional(candidates), transport: optional(literal('udp', 'tcp', 'auto')),
      reachable: optional(reachable), tcpListen: optional(candidates), resume: optional(base64(16)),
    }),
    acceptBody: object<AcceptBody>({
      session: sessionId, intentHash: base64(32), candidates, nonce, tcpCandidates: optional(candidates),
      reachable: optional(reachable), tcpListen: optional(candidates),
    }),
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
 * Parses one text frame: size limit, UTF-8, JSON, then `validate`.
 * @throws RendezvousProtocolError ('too-large', 'bad-json', 'unknown-type', 'invalid')
 */
export function parseMessage(frame: string | Uint8Array, limits: MessageLimits = DEFAULT_MESSAGE_LIMITS): ParsedMessage {
  const size = typeof frame === 'string' ? Buffer.byteLength(frame) : frame.byteLength;
  if (size > limits.maxMessageBytes) {
    throw new RendezvousProtocolError('too-large', `message: ${size} bytes, at most ${limits.maxMessageBytes}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(typeof frame === 'string' ? frame : utf8.decode(frame));
  } catch (error) {
    throw new RendezvousProtocolError('bad-json', `message: not JSON (${(error as Error).message})`);
  }
  return validate(json, limits);
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

/** One frame's text. */
export function encodeMessage(message: ParsedMessage): string {
  return JSON.stringify(message);
}
