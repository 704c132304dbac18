/**
 * One error family for all of natpunch (STYLE §5): every error thrown on purpose is a
 * NatpunchError with a stable `code`, so callers can `switch (err.code)`. The brand survives
 * two installed copies of the package, where `instanceof` would not.
 */

const brand = Symbol.for('natpunch.error');

/**
 * Every stable error code natpunch throws with; `err.code` is one of these. What each means and
 * what to do about it: [docs/errors.md](../docs/errors.md).
 */
export type ErrorCode =
  | 'ERR_STUN_DECODE'
  | 'ERR_STUN_ENCODE'
  | 'ERR_STUN_TIMEOUT'
  | 'ERR_STUN_ERROR_RESPONSE'
  | 'ERR_STUN_INTEGRITY'
  | 'ERR_STUN_CLOSED'
  | 'ERR_LAB'
  | 'ERR_LAB_NOT_ROOT'
  | 'ERR_SIM'
  | 'ERR_USAGE'
  | 'ERR_KEY_FILE'
  | 'ERR_NOISE'
  | 'ERR_TRANSPORT'
  | 'ERR_TRANSPORT_DECODE'
  | 'ERR_TRANSPORT_RESET'
  | 'ERR_TRANSPORT_TIMEOUT'
  | 'ERR_RENDEZVOUS' | 'ERR_RENDEZVOUS_PROTOCOL' | 'ERR_RENDEZVOUS_VERIFY'
  | 'ERR_TURN'
  | 'ERR_PORTMAP' | 'ERR_PORTMAP_DECODE'
  | 'ERR_MUX' | 'ERR_MUX_RESET'
  | 'ERR_TRANSFER' | 'ERR_TRANSFER_DECODE'
  | 'ERR_ABORTED'
  | 'ERR_PEER_ABORTED'
  | 'ERR_REFUSED'
  | 'ERR_UNREACHABLE'
  | 'ERR_DNS'
  | 'ERR_LISTEN'
  | 'ERR_REDIS';

/**
 * The base of every error natpunch throws on purpose. Switch on {@link NatpunchError.code}; test
 * with {@link NatpunchError.is} rather than `instanceof`, which fails across two installed copies.
 */
export class NatpunchError extends Error {
  /** The stable error code (see {@link ErrorCode} and docs/errors.md). */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'NatpunchError';
  }

  /** @internal The brand {@link NatpunchError.is} checks (`Symbol.for('natpunch.error')`). */
  get [brand](): true {
    return true;
  }

  /** Whether `value` is a natpunch error, from this copy of the package or another. */
  static is(value: unknown): value is NatpunchError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
  }
}

/** A STUN message or attribute could not be decoded. `offset` is where in the buffer, if known. */
export class StunDecodeError extends NatpunchError {
  /** Byte offset in the decoded buffer where decoding failed, when known. */
  readonly offset: number | undefined;
  constructor(message: string, offset?: number) {
    super('ERR_STUN_DECODE', message);
    this.name = 'StunDecodeError';
    this.offset = offset;
  }
}

/** A STUN message could not be encoded (`ERR_STUN_ENCODE`): a value out of range for its attribute. */
export class StunEncodeError extends NatpunchError {
  constructor(message: string) {
    super('ERR_STUN_ENCODE', message);
    this.name = 'StunEncodeError';
  }
}

/** A STUN transaction got no answer within its retransmission schedule (RFC 8489 §6.2.1). */
export class TransactionTimeoutError extends NatpunchError {
  constructor(message: string) {
    super('ERR_STUN_TIMEOUT', message);
    this.name = 'TransactionTimeoutError';
  }
}

/** The server answered with an error response; `status` is the STUN ERROR-CODE (e.g. 400). */
export class StunErrorResponseError extends NatpunchError {
  /** The STUN ERROR-CODE class and number, e.g. 400. */
  readonly status: number;
  /** The reason phrase of the error response. */
  readonly reason: string;
  constructor(status: number, reason: string) {
    super('ERR_STUN_ERROR_RESPONSE', `STUN error response ${status} ${reason}`);
    this.name = 'StunErrorResponseError';
    this.status = status;
    this.reason = reason;
  }
}

/**
 * A TURN request failed: the server refused it (`status` is the STUN ERROR-CODE, e.g. 401, 437,
 * 486, and `reason` its reason phrase) or it could not be made (`status` 0, `reason` says why).
 * @see RFC 8656 §7.2, §7.3, §18
 */
export class TurnError extends NatpunchError {
  /** The STUN ERROR-CODE of the refusal (401, 437, 486, …), or 0 when the request could not be made. */
  readonly status: number;
  /** The server's reason phrase, or why the request could not be made. */
  readonly reason: string;
  constructor(status: number, reason: string, message: string, options?: { cause?: unknown }) {
    super('ERR_TURN', message, options);
    this.name = 'TurnError';
    this.status = status;
    this.reason = reason;
  }
}

/** A NAT-PMP, PCP or UPnP-IGD message could not be decoded. `offset` is where in the bytes, if known. */
export class PortMapDecodeError extends NatpunchError {
  /** Byte offset where decoding failed, when known. */
  readonly offset: number | undefined;
  constructor(message: string, offset?: number) {
    super('ERR_PORTMAP_DECODE', message);
    this.name = 'PortMapDecodeError';
    this.offset = offset;
  }
}

/**
 * Why a port mapping could not be made or kept (src/portmap). Never fatal to a peer: it only
 * loses one candidate.
 * - `no-gateway`: no default route, or nothing answered on any port-mapping protocol;
 * - `double-nat`: a gateway mapped the port, but its external address is itself private (another
 *   NAT sits in front of it), so the mapping reaches nobody outside; `externalAddress` names it;
 * - `refused`: a gateway answered and said no (`status` is its result or UPnP error code);
 * - `unsupported`: a gateway answered that it does not speak the protocol (PCP UNSUPP_VERSION);
 * - `timeout`: the time budget ran out before any protocol answered;
 * - `lost`: a mapping could not be renewed before it expired.
 * @see RFC 6886 §3.5, RFC 6887 §7.4
 */
export type PortMapFailure = 'no-gateway' | 'double-nat' | 'refused' | 'unsupported' | 'timeout' | 'lost';

/** A port mapping could not be made or kept (`ERR_PORTMAP`); {@link PortMapFailure} lists the reasons. */
export class PortMapError extends NatpunchError {
  /** Why: see {@link PortMapFailure}. */
  readonly reason: PortMapFailure;
  /** The protocol that failed ('pcp' | 'nat-pmp' | 'upnp-igd'), or undefined for all of them. */
  readonly method: string | undefined;
  /** The gateway's result code (NAT-PMP/PCP) or UPnP errorCode, 0 when none. */
  readonly status: number;
  /** With `double-nat`: the private external address the gateway reported. */
  readonly externalAddress: string | undefined;
  /** With several protocols tried: each one's own failure. */
  readonly attempts: readonly PortMapError[];
  constructor(reason: PortMapFailure, message: string, options: {
    method?: string; status?: number; externalAddress?: string; attempts?: readonly PortMapError[]; cause?: unknown;
  } = {}) {
    super('ERR_PORTMAP', message, { cause: options.cause });
    this.name = 'PortMapError';
    this.reason = reason;
    this.method = options.method;
    this.status = options.status ?? 0;
    this.externalAddress = options.externalAddress;
    this.attempts = options.attempts ?? [];
  }
}

/** The network-namespace lab failed (`ERR_LAB`), or needs root and is not (`ERR_LAB_NOT_ROOT`). */
export class LabError extends NatpunchError {
  constructor(message: string, options?: { cause?: unknown; notRoot?: boolean }) {
    super(options?.notRoot ? 'ERR_LAB_NOT_ROOT' : 'ERR_LAB', message, options);
    this.name = 'LabError';
  }
}

/** The in-process network (src/sim) was misused, or a simulated run did not settle in its bounds. */
export class SimError extends NatpunchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SIM', message, options);
    this.name = 'SimError';
  }
}

/** The CLI was used wrongly (`ERR_USAGE`, exit code 2): a missing or malformed flag or argument. */
export class UsageError extends NatpunchError {
  constructor(message: string) {
    super('ERR_USAGE', message);
    this.name = 'UsageError';
  }
}

/**
 * The operation was aborted on purpose on this side (`ERR_ABORTED`): its `AbortSignal` fired, or
 * `connection.abort(reason)` was called (the reason is the message).
 */
export class AbortedError extends NatpunchError {
  constructor(message = 'the operation was aborted', options?: { cause?: unknown }) {
    super('ERR_ABORTED', message, options);
    this.name = 'AbortedError';
  }
}

/**
 * Why a peer refused, as far as code can tell: `not-allowed` (its allow-list), `busy` (it is
 * setting up as many incoming connections as it allows) and `rate-limited` (this peer tried too
 * often lately) are natpunch's own, and the last two pass: try again later. `other`: its accept
 * policy said no.
 */
export type RefusalKind = 'not-allowed' | 'busy' | 'rate-limited' | 'other';

/**
 * The other peer refused the connection (it was not on the peer's allow-list, its limits on
 * incoming connections refused, or its accept policy said no). `peerId` is the peer asked;
 * `reason` what it answered; `kind` which of these it was.
 */
export class RefusedError extends NatpunchError {
  /** The peer that refused. */
  readonly peerId: string;
  /** What it answered, e.g. `not on its allow-list`, or `busy: ...` / `rate-limited: ...` (the kind first). */
  readonly reason: string;
  /** Which kind of refusal it was (read from `reason`): `busy` and `rate-limited` pass, try again later. */
  readonly kind: RefusalKind;
  constructor(peerId: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_REFUSED', `peer ${peerId} refused the connection: ${reason}`, options);
    this.name = 'RefusedError';
    this.peerId = peerId;
    this.reason = reason;
    this.kind = refusalKind(reason);
  }
}

/** A refusal's kind from its reason: the peer's limits put their code first (`busy: ...`). */
function refusalKind(reason: string): RefusalKind {
  if (reason === 'not on its allow-list') return 'not-allowed';
  const code = /^(busy|rate-limited): /.exec(reason)?.[1];
  return code === 'busy' || code === 'rate-limited' ? code : 'other';
}
