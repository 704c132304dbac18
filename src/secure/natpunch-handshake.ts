/**
 * The natpunch handshake: Noise_XX_25519_ChaChaPoly_SHA256, with each side's static key
 * vouched for by its Ed25519 identity (see handshake-payload.ts). Message-oriented: the caller
 * moves the messages over whatever it has (datagrams, or a stream with framing.ts).
 *
 *   initiator                                  responder
 *   write() -> e                               read()
 *   read()                                <-   write() e, ee, s, es + payload(identity)
 *   write() -> s, se + payload(identity)       read()
 *   complete                                   complete
 *
 * Prologue: "natpunch/1" followed by the caller's session context (e.g. the rendezvous session
 * id). Both sides must pass the same context; otherwise message 2 fails to decrypt, so a
 * handshake can never be replayed into another session.
 * @see docs/decisions/002-noise-handshake.md for why XX, and the security argument.
 */
import { UsageError } from '../errors.js';
import type { Identity } from '../identity/identity.js';
import { normalizePeerId } from '../identity/peer-id.js';
import type { DatagramCipherOptions } from './datagram-cipher.js';
import { generateKeyPair, type KeyPair } from './dh-25519.js';
import { NoiseError } from './errors.js';
import {
  createHandshakePayload,
  decodeHandshakePayload,
  encodeHandshakePayload,
  verifyHandshakePayload,
} from './handshake-payload.js';
import { HandshakeState } from './handshake-state.js';
import { NoiseSession, type SecureSession } from './secure-session.js';

export const NATPUNCH_PROTOCOL_NAME = 'Noise_XX_25519_ChaChaPoly_SHA256';
export const NATPUNCH_PROLOGUE = new TextEncoder().encode('natpunch/1');

/** Options of {@link NatpunchHandshake}'s constructor. */
export interface NatpunchHandshakeOptions {
  /** This side's identity, proved to the peer. */
  identity: Identity;
  /** Whether this side sends the first message. */
  initiator: boolean;
  /** Whom we mean to reach. Required for the initiator (unless `anyPeer`); optional for the responder. */
  expectedPeerId?: string;
  /**
   * An initiator that accepts whoever answers (serverless punching without --peer-id: encrypted,
   * and the caller shows the proven id to the user, like ssh's first-use fingerprint).
   */
  anyPeer?: boolean;
  /** Session context, appended to the fixed prologue "natpunch/1". Must match on both sides. */
  prologue?: Uint8Array;
  /** Options of the session's datagram cipher. */
  datagram?: DatagramCipherOptions;
  /**
   * @internal
   * This side's DH key pairs, for a caller that must rebuild the same handshake state (a
   * datagram handshake that drops a forged message replays what it sent and read so far; with
   * the same keys every message it writes comes out identical). Default: fresh pairs.
   */
  keys?: { s: KeyPair; e: KeyPair };
}

/**
 * The natpunch handshake: Noise_XX_25519_ChaChaPoly_SHA256, each side's static key vouched for
 * by its Ed25519 identity, and the prologue "natpunch/1" plus the caller's session context.
 * Message-oriented: call `write()` and send what it returns, `read()` what arrives, until
 * `complete`; then `session()`. Failures are {@link NoiseError}s (`ERR_NOISE`). Peers run it for
 * you; it is public for carrying natpunch identities over a transport of your own.
 * See docs/decisions/002-noise-handshake.md.
 */
export class NatpunchHandshake {
  /** Whether this side sends the first message. */
  readonly initiator: boolean;
  readonly #identity: Identity;
  readonly #expectedPeerId: string | undefined;
  readonly #state: HandshakeState;
  readonly #options: NatpunchHandshakeOptions;
  #remotePeerId: string | undefined;
  #failure: NoiseError | undefined;
  #session: SecureSession | undefined;

  constructor(options: NatpunchHandshakeOptions) {
    if (options.initiator && options.expectedPeerId === undefined && options.anyPeer !== true) {
      throw new UsageError('NatpunchHandshake: an initiator must name the peer it dials (expectedPeerId)');
    }
    this.initiator = options.initiator;
    this.#identity = options.identity;
    this.#options = options;
    this.#expectedPeerId = options.expectedPeerId === undefined ? undefined : normalizePeerId(options.expectedPeerId);
    const context = options.prologue ?? new Uint8Array(0);
    const prologue = new Uint8Array(NATPUNCH_PROLOGUE.length + context.length);
    prologue.set(NATPUNCH_PROLOGUE);
    prologue.set(context, NATPUNCH_PROLOGUE.length);
    // A fresh static DH key per handshake: the Ed25519 signature is what makes it ours, so
    // nothing is gained by keeping it, and a leaked one then exposes a single session.
    this.#state = new HandshakeState({
      protocolName: NATPUNCH_PROTOCOL_NAME,
      initiator: options.initiator,
      prologue,
      s: options.keys?.s ?? generateKeyPair(),
      ...(options.keys ? { e: options.keys.e } : {}),
    });
  }

  /** True when both identities are verified and session() may be called. */
  get complete(): boolean {
    return this.#state.isComplete && this.#failure === undefined;
  }

  /** The remote peer id once its identity payload verified (initiator: after message 2). */
  get remotePeerId(): string | undefined {
    return this.#remotePeerId;
  }

  /** The next handshake message to send, or null when it is the peer's turn or we are done. */
  write(): Uint8Array | null {
    this.#checkUsable();
    if (!this.#state.isMyTurn) return null;
    return this.#guard(() => this.#state.writeMessage(this.#payloadFor(this.#state.messageIndex)));
  }

  /** Processes the peer's handshake message. Throws NoiseError; after one, the handshake is dead. */
  read(message: Uint8Array): void {
    this.#checkUsable();
    if (this.#state.isComplete || this.#state.isMyTurn) {
      throw new NoiseError(
        'invalid-state',
        `natpunch handshake: unexpected message while it is ${this.#state.isComplete ? 'complete' : 'our turn to write'}`,
      );
    }
    this.#guard(() => {
      const index = this.#state.messageIndex;
      const payload = this.#state.readMessage(message);
      if (!this.#carriesIdentity(index)) {
        if (payload.length !== 0) {
          throw new NoiseError(
            'malformed-message',
            `natpunch handshake message ${index + 1}: payload length ${payload.length}, expected 0`,
          );
        }
        return;
      }
      const remoteStaticKey = this.#state.remoteStaticKey as Uint8Array;
      this.#remotePeerId = verifyHandshakePayload(
        decodeHandshakePayload(payload),
        remoteStaticKey,
        this.#expectedPeerId,
      );
    });
  }

  /** The authenticated session. Throws NoiseError 'invalid-state' before completion. */
  session(): SecureSession {
    this.#checkUsable();
    if (!this.#state.isComplete || this.#remotePeerId === undefined) {
      throw new NoiseError('invalid-state', 'natpunch handshake: session() before the handshake completed');
    }
    this.#session ??= new NoiseSession(this.#state, this.#remotePeerId, { datagram: this.#options.datagram });
    return this.#session;
  }

  /** Our identity goes in exactly the messages that carry our static key (XX: 2 and 3). */
  #payloadFor(index: number): Uint8Array {
    if (!this.#carriesIdentity(index)) return new Uint8Array(0);
    const staticKey = this.#state.localStaticKey as Uint8Array;
    return encodeHandshakePayload(createHandshakePayload(this.#identity, staticKey));
  }

  #carriesIdentity(index: number): boolean {
    return this.#state.pattern.messages[index]?.includes('s') ?? false;
  }

  #checkUsable(): void {
    if (this.#failure) {
      throw new NoiseError(
        'invalid-state',
        `natpunch handshake: already failed (${this.#failure.reason}); start a new one`,
        {
          cause: this.#failure,
        },
      );
    }
  }

  #guard<T>(step: () => T): T {
    try {
      return step();
    } catch (error) {
      if (error instanceof NoiseError) this.#failure = error;
      throw error;
    }
  }
}
