/**
 * STUN numbers, named in the RFCs' words, with tables that give the wire names back for
 * logs and error messages (STYLE §3).
 *
 * @see RFC 8489 §5 (header), §18 (IANA registries); RFC 5780 §7; RFC 8445 §16.1; RFC 8656 §18
 */

/** Fixed value in bytes 4..7 of every RFC 5389/8489 message. @see RFC 8489 §5 */
export const MAGIC_COOKIE = 0x2112a442;

/** Message header: type (2), length (2), magic cookie (4), transaction id (12). @see RFC 8489 §5 */
export const HEADER_LENGTH = 20;

/** Transaction id length in bytes. @see RFC 8489 §5 */
export const TRANSACTION_ID_LENGTH = 12;

/** Attribute header: type (2) and length (2). @see RFC 8489 §14 */
export const ATTRIBUTE_HEADER_LENGTH = 4;

/** The header's 16-bit length field caps the body at this many bytes. @see RFC 8489 §5 */
export const MAX_MESSAGE_BODY_LENGTH = 0xffff;

/** XORed into the CRC-32 of FINGERPRINT so other protocols' CRCs never match. @see RFC 8489 §14.7 */
export const FINGERPRINT_XOR = 0x5354554e;

/** STUN methods (12 bits). @see RFC 8489 §18.2; RFC 8656 §17; RFC 6062 §6.1 */
export enum Method {
  Binding = 0x001,
  Allocate = 0x003,
  Refresh = 0x004,
  Send = 0x006,
  Data = 0x007,
  CreatePermission = 0x008,
  ChannelBind = 0x009,
  Connect = 0x00a,
  ConnectionBind = 0x00b,
  ConnectionAttempt = 0x00c,
}

/** The two class bits C1 C0 of the message type. @see RFC 8489 §5 */
export enum MessageClass {
  Request = 0b00,
  Indication = 0b01,
  SuccessResponse = 0b10,
  ErrorResponse = 0b11,
}

/**
 * Attribute types. 0x0000-0x7FFF are comprehension-required, 0x8000-0xFFFF
 * comprehension-optional.
 * @see RFC 8489 §18.3; RFC 5780 §9.1; RFC 8445 §16.1; RFC 8656 §18; RFC 6062 §6.2
 */
export enum AttrType {
  MappedAddress = 0x0001, // MAPPED-ADDRESS
  ChangeRequest = 0x0003, // CHANGE-REQUEST (RFC 5780)
  Username = 0x0006, // USERNAME
  MessageIntegrity = 0x0008, // MESSAGE-INTEGRITY
  ErrorCode = 0x0009, // ERROR-CODE
  UnknownAttributes = 0x000a, // UNKNOWN-ATTRIBUTES
  ChannelNumber = 0x000c, // CHANNEL-NUMBER (RFC 8656)
  Lifetime = 0x000d, // LIFETIME (RFC 8656)
  XorPeerAddress = 0x0012, // XOR-PEER-ADDRESS (RFC 8656)
  Data = 0x0013, // DATA (RFC 8656)
  Realm = 0x0014, // REALM
  Nonce = 0x0015, // NONCE
  XorRelayedAddress = 0x0016, // XOR-RELAYED-ADDRESS (RFC 8656)
  RequestedAddressFamily = 0x0017, // REQUESTED-ADDRESS-FAMILY (RFC 8656)
  EvenPort = 0x0018, // EVEN-PORT (RFC 8656)
  RequestedTransport = 0x0019, // REQUESTED-TRANSPORT (RFC 8656)
  DontFragment = 0x001a, // DONT-FRAGMENT (RFC 8656)
  MessageIntegritySha256 = 0x001c, // MESSAGE-INTEGRITY-SHA256
  PasswordAlgorithm = 0x001d, // PASSWORD-ALGORITHM
  Userhash = 0x001e, // USERHASH
  XorMappedAddress = 0x0020, // XOR-MAPPED-ADDRESS
  ReservationToken = 0x0022, // RESERVATION-TOKEN (RFC 8656)
  Priority = 0x0024, // PRIORITY (RFC 8445)
  UseCandidate = 0x0025, // USE-CANDIDATE (RFC 8445)
  Padding = 0x0026, // PADDING (RFC 5780)
  ResponsePort = 0x0027, // RESPONSE-PORT (RFC 5780)
  ConnectionId = 0x002a, // CONNECTION-ID (RFC 6062)
  AdditionalAddressFamily = 0x8000, // ADDITIONAL-ADDRESS-FAMILY (RFC 8656)
  AddressErrorCode = 0x8001, // ADDRESS-ERROR-CODE (RFC 8656)
  PasswordAlgorithms = 0x8002, // PASSWORD-ALGORITHMS
  AlternateDomain = 0x8003, // ALTERNATE-DOMAIN
  Icmp = 0x8004, // ICMP (RFC 8656)
  Software = 0x8022, // SOFTWARE
  AlternateServer = 0x8023, // ALTERNATE-SERVER
  Fingerprint = 0x8028, // FINGERPRINT
  IceControlled = 0x8029, // ICE-CONTROLLED (RFC 8445)
  IceControlling = 0x802a, // ICE-CONTROLLING (RFC 8445)
  ResponseOrigin = 0x802b, // RESPONSE-ORIGIN (RFC 5780)
  OtherAddress = 0x802c, // OTHER-ADDRESS (RFC 5780)
}

/**
 * XOR-MAPPED-ADDRESS as numbered by pre-RFC 5389 drafts; some deployed servers still send it.
 * Accepted on decode by `reflexiveAddress()` unless `strict` (STYLE §7); never sent.
 */
export const LEGACY_XOR_MAPPED_ADDRESS = 0x8020;

/**
 * RFC 3489's SOURCE-ADDRESS (§11.2.5) and CHANGED-ADDRESS (§11.2.3): RESPONSE-ORIGIN and
 * OTHER-ADDRESS under their old codes, which IANA now lists as reserved. Sent only in answers
 * to RFC 3489 clients (RFC 8489 §11), which know no other names.
 */
export const RFC3489_SOURCE_ADDRESS = 0x0004;
export const RFC3489_CHANGED_ADDRESS = 0x0005;

/** Error codes of ERROR-CODE. @see RFC 8489 §14.8, §18.4; RFC 8656 §18; RFC 8445 §16.1 */
export enum StunErrorCode {
  TryAlternate = 300,
  BadRequest = 400,
  Unauthenticated = 401,
  Forbidden = 403,
  UnknownAttribute = 420,
  AllocationMismatch = 437,
  StaleNonce = 438,
  AddressFamilyNotSupported = 440,
  WrongCredentials = 441,
  UnsupportedTransportProtocol = 442,
  PeerAddressFamilyMismatch = 443,
  AllocationQuotaReached = 486,
  RoleConflict = 487,
  ServerError = 500,
  InsufficientCapacity = 508,
}

/** Password algorithms of PASSWORD-ALGORITHM(S). @see RFC 8489 §18.5 */
export enum PasswordAlgorithmNumber {
  Md5 = 0x0001,
  Sha256 = 0x0002,
}

/**
 * Wire names, derived from the enum keys the way IANA spells them: 'XorMappedAddress' is
 * XOR-MAPPED-ADDRESS (test/wire/iana.test.ts checks every one against the registry).
 */
const attrNames: ReadonlyMap<number, string> = new Map<number, string>([
  ...Object.entries(AttrType)
    .filter((entry): entry is [string, number] => typeof entry[1] === 'number')
    .map(([key, type]): [number, string] => [type, key.replace(/(?<=[a-z0-9])(?=[A-Z])/g, '-').toUpperCase()]),
  [LEGACY_XOR_MAPPED_ADDRESS, 'XOR-MAPPED-ADDRESS(0x8020)'],
  [RFC3489_SOURCE_ADDRESS, 'SOURCE-ADDRESS(RFC 3489)'],
  [RFC3489_CHANGED_ADDRESS, 'CHANGED-ADDRESS(RFC 3489)'],
]);

const classNames: readonly string[] = ['request', 'indication', 'success response', 'error response'];

/** Recommended reason phrases. @see RFC 8489 §14.8; RFC 8656 §18; RFC 8445 §16.1 */
const reasonPhrases: ReadonlyMap<number, string> = new Map<number, string>([
  [StunErrorCode.TryAlternate, 'Try Alternate'],
  [StunErrorCode.BadRequest, 'Bad Request'],
  [StunErrorCode.Unauthenticated, 'Unauthenticated'],
  [StunErrorCode.Forbidden, 'Forbidden'],
  [StunErrorCode.UnknownAttribute, 'Unknown Attribute'],
  [StunErrorCode.AllocationMismatch, 'Allocation Mismatch'],
  [StunErrorCode.StaleNonce, 'Stale Nonce'],
  [StunErrorCode.AddressFamilyNotSupported, 'Address Family not Supported'],
  [StunErrorCode.WrongCredentials, 'Wrong Credentials'],
  [StunErrorCode.UnsupportedTransportProtocol, 'Unsupported Transport Protocol'],
  [StunErrorCode.PeerAddressFamilyMismatch, 'Peer Address Family Mismatch'],
  [StunErrorCode.AllocationQuotaReached, 'Allocation Quota Reached'],
  [StunErrorCode.RoleConflict, 'Role Conflict'],
  [StunErrorCode.ServerError, 'Server Error'],
  [StunErrorCode.InsufficientCapacity, 'Insufficient Capacity'],
]);

function hex16(n: number): string {
  return Number.isInteger(n) && n >= 0 ? '0x' + n.toString(16).padStart(4, '0') : String(n);
}

/** Wire name of an attribute type: 'XOR-MAPPED-ADDRESS'; unknown types print as '0x1234'. */
export const attrName = (type: number): string => attrNames.get(type) ?? hex16(type);

/** Name of a method, as the enum spells it (RFC words): 'Binding', 'CreatePermission'; unknown ones print as '0x0123'. */
export const methodName = (m: number): string => (Number.isInteger(m) ? (Method as Record<number, string>)[m] : undefined) ?? hex16(m);

/** Name of a class: 'request', 'success response', ... */
export const className = (c: MessageClass): string => classNames[c & 0b11] ?? String(c);

/** Recommended reason phrase for an error code, or '' when the registry has none. */
export const reasonPhrase = (code: number): string => reasonPhrases.get(code) ?? '';

/**
 * Types 0x0000-0x7FFF must be understood: a request carrying an unknown one is refused
 * with 420 and UNKNOWN-ATTRIBUTES. @see RFC 8489 §14, §6.3.1
 */
export function isComprehensionRequired(type: number): boolean {
  return type >= 0 && type <= 0x7fff;
}
