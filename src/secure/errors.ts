import { NatpunchError } from '../errors.js';

/**
 * Why a Noise handshake or transport message was refused. Stable strings: callers and logs
 * may switch on them.
 */
export type NoiseFailure =
  /** AEAD tag mismatch: tampered bytes, a wrong key, or a different prologue/session context. */
  | 'decrypt-failed'
  /** A message too short for the tokens it must carry, or otherwise unparseable. */
  | 'malformed-message'
  /** The peer's identity payload does not have the natpunch layout. */
  | 'bad-payload'
  /** The peer's Ed25519 signature does not cover the Noise static key it presented. */
  | 'bad-signature'
  /** The peer proved an identity, but not the one we expected to reach. */
  | 'peer-mismatch'
  /** An operation out of turn: writing when it is the peer's turn, using a failed handshake, ... */
  | 'invalid-state'
  /** A DH public key the curve refuses (e.g. a low-order point giving an all-zero secret). */
  | 'invalid-key'
  /** A datagram counter already seen, or too old for the replay window to vouch for. */
  | 'replayed'
  /** The 64-bit nonce space of a key is used up; a new handshake is needed. */
  | 'nonce-exhausted'
  /** A Noise message over 65535 bytes (Noise rev 34 §3). */
  | 'message-too-large'
  /** A protocol name, pattern or primitive this implementation does not provide. */
  | 'unsupported';

/** Any failure of the Noise layer. `reason` says which; the session (if any) must not be trusted. */
export class NoiseError extends NatpunchError {
  /** Which failure: see {@link NoiseFailure}. */
  readonly reason: NoiseFailure;
  constructor(reason: NoiseFailure, message: string, options?: { cause?: unknown }) {
    super('ERR_NOISE', message, options);
    this.name = 'NoiseError';
    this.reason = reason;
  }
}
