import { NatpunchError } from '../errors.js';

/**
 * The error codes that travel on the wire in `error {code}` messages. Stable strings: both
 * sides switch on them, and they are listed in docs/decisions/004-rendezvous-protocol.md.
 */
export type RendezvousErrorReason =
  /** The frame was not JSON. */
  | 'bad-json'
  /** The frame was larger than the receiver's message limit. */
  | 'too-large'
  /** JSON, but a field is missing or has the wrong type, size or form. */
  | 'invalid'
  /** A `type` this side does not know, or one that never travels in this direction. */
  | 'unknown-type'
  /** Anything but `register` before a registration succeeded. */
  | 'not-registered'
  /** A second `register` on a socket that is already registered. */
  | 'already-registered'
  /** The registration did not sign this connection's hello nonce. */
  | 'bad-nonce'
  /** A signed object whose signature does not verify with the key in the claimed peer id. */
  | 'bad-signature'
  /** The claimed server-reflexive address is not what the server's STUN port saw for the token. */
  | 'srflx-mismatch'
  /** A claimed server-reflexive address, but no STUN Binding with the token arrived in time. */
  | 'srflx-unproven'
  /** The target of a `connect` is not registered. */
  | 'peer-not-found'
  /** The target refused the intent (`message` carries its reason). */
  | 'refused'
  /** An intent whose expiry has passed, or lies too far in the future. */
  | 'expired'
  /** The other side did not answer before the intent expired. */
  | 'timeout'
  /** An `accept` or `refuse` for a session this socket has not been offered. */
  | 'unknown-session'
  /** A `connect` reusing a session id that is still pending. */
  | 'session-in-use'
  /** Too many intents pending for this peer. */
  | 'too-many-pending'
  /** The socket's token bucket is empty. */
  | 'rate-limited'
  /** The server holds as many peers as it may. */
  | 'server-full'
  /** A newer registration of the same peer id took over; this socket is closed. */
  | 'replaced'
  /** No registration within the hello timeout; the socket is closed. */
  | 'registration-timeout'
  /** A `connect` naming the sender itself, or `from` that is not the sender. */
  | 'bad-intent'
  /** The server is shutting down. */
  | 'shutdown'
  /**
   * No protocol version in common: a `register` naming a version hello did not offer, or a
   * `connect` to a peer registered with another version; on the client's side, a hello that
   * offers none of this client's versions.
   */
  | 'unsupported-version'
  /** A `trickle` from or to a peer that did not negotiate the 'trickle' capability. */
  | 'unsupported-capability'
  /** A `trickle` beyond the session's allowance (messages, candidates, or after end-of-candidates). */
  | 'trickle-limit'
  /** (client side) The WebSocket to the server could not be opened: the message names the URL and the cause. */
  | 'unreachable'
  /** (client side) The WebSocket closed, or the client was closed. */
  | 'closed'
  /** (client side) Not registered right now: the reconnecting client is between attempts. */
  | 'disconnected';

/** The other side (usually the server) answered with `error {code}`, or the session ended. */
export class RendezvousError extends NatpunchError {
  /** The wire code; unknown codes from a newer server are passed through as strings. */
  readonly reason: RendezvousErrorReason | (string & {});
  /** The session (or other id) the error refers to, when the message named one. */
  readonly ref: string | undefined;
  constructor(reason: RendezvousErrorReason | (string & {}), message: string, options?: { ref?: string; cause?: unknown }) {
    super('ERR_RENDEZVOUS', message, options);
    this.name = 'RendezvousError';
    this.reason = reason;
    this.ref = options?.ref;
  }
}

export type ProtocolFailure = 'bad-json' | 'too-large' | 'invalid' | 'unknown-type';

/** A message that does not follow the protocol: its `reason` is the wire code to answer with. */
export class RendezvousProtocolError extends NatpunchError {
  readonly reason: ProtocolFailure;
  constructor(reason: ProtocolFailure, message: string) {
    super('ERR_RENDEZVOUS_PROTOCOL', message);
    this.name = 'RendezvousProtocolError';
    this.reason = reason;
  }
}

export type VerifyFailure =
  | 'bad-signature'
  | 'wrong-peer'
  | 'expired'
  | 'replayed'
  | 'mismatch'
  | 'invalid'
  | 'busy';

/**
 * A signed object (registration, intent, accept) failed verification: forged, tampered,
 * replayed, expired, or not about what it should be about. Nothing it names may be contacted.
 */
export class RendezvousVerifyError extends NatpunchError {
  readonly reason: VerifyFailure;
  constructor(reason: VerifyFailure, message: string, options?: { cause?: unknown }) {
    super('ERR_RENDEZVOUS_VERIFY', message, options);
    this.name = 'RendezvousVerifyError';
    this.reason = reason;
  }
}
