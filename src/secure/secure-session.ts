/**
 * A completed, authenticated natpunch session: what a handshake hands to the transports.
 */
import { CipherState } from './cipher-state.js';
import { TAG_LENGTH } from './cipher-chachapoly.js';
import { DatagramCipher, type DatagramCipherOptions } from './datagram-cipher.js';
import { NoiseError } from './errors.js';
import { MAX_MESSAGE_LENGTH, type HandshakeState } from './handshake-state.js';

const EMPTY = new Uint8Array(0);
/** Label of the second Split() that keys the datagram cipher. */
const DATAGRAM_LABEL = new TextEncoder().encode('natpunch/1 datagram');
/** Label of the Split() whose keys only derive the reset tokens. */
const RESET_LABEL = new TextEncoder().encode('natpunch/1 reset');
const RESET_TOKEN_LENGTH = 16;
/** Largest plaintext one stream message can carry. */
export const MAX_PLAINTEXT_LENGTH = MAX_MESSAGE_LENGTH - TAG_LENGTH;

/** A completed handshake's session: who the peer is, and the ciphers both sides share ({@link Connection.session}). */
export interface SecureSession {
  /** The peer id the remote side proved to hold. */
  readonly remotePeerId: string;
  /** Noise h: the same on both sides, unique to this session (channel binding). */
  readonly handshakeHash: Uint8Array;
  /**
   * Encrypts one message for an ordered, reliable channel (Noise's implicit counters). With
   * `headroom`, the message starts that many bytes into the returned buffer (room for framing).
   */
  encrypt(plaintext: Uint8Array, headroom?: number): Uint8Array;
  /** Decrypts the next message of that channel; a failure is fatal for the receive direction. */
  decrypt(ciphertext: Uint8Array): Uint8Array;
  /**
   * The cipher for unordered, lossy datagrams, with its own keys. One per session: a second
   * instance would restart the counters and reuse nonces, so this is always the same object.
   */
  readonly datagram: DatagramCipher;
  /**
   * Secrets that authenticate the stream transport's RESET (src/transport: authenticateResets):
   * `send` goes into our RESETs, `receive` is what the peer's carry. Both sides derive the same
   * pair from the handshake's chaining key, so only the two ends know them.
   */
  readonly resetTokens: {
    /** What our RESETs carry. */
    readonly send: Uint8Array;
    /** What the peer's RESETs must carry. */
    readonly receive: Uint8Array;
  };
}

export class NoiseSession implements SecureSession {
  readonly remotePeerId: string;
  readonly #handshakeHash: Uint8Array;
  readonly #send: CipherState;
  readonly #receive: CipherState;
  readonly datagram: DatagramCipher;
  readonly resetTokens: { readonly send: Uint8Array; readonly receive: Uint8Array };
  #receiveFailure: NoiseError | undefined;

  /** From a completed HandshakeState whose peer has been verified as `remotePeerId`. */
  constructor(state: HandshakeState, remotePeerId: string, options: { datagram?: DatagramCipherOptions } = {}) {
    const streamKeys = state.split();
    this.#send = streamKeys.send;
    this.#receive = streamKeys.receive;
    this.datagram = new DatagramCipher(state.split(DATAGRAM_LABEL), options.datagram);
    // A token is the first keystream block of a key used for nothing else (nonce 0, used once):
    // pseudorandom, and the peer's receive key is our send key, so its `receive` is our `send`.
    const reset = state.split(RESET_LABEL);
    const token = (key: CipherState): Uint8Array => key.encryptWithAd(EMPTY, new Uint8Array(RESET_TOKEN_LENGTH)).slice(0, RESET_TOKEN_LENGTH);
    this.resetTokens = { send: token(reset.send), receive: token(reset.receive) };
    this.#handshakeHash = state.handshakeHash;
    this.remotePeerId = remotePeerId;
  }

  get handshakeHash(): Uint8Array {
    return this.#handshakeHash.slice();
  }

  encrypt(plaintext: Uint8Array, headroom = 0): Uint8Array {
    if (plaintext.length > MAX_PLAINTEXT_LENGTH) {
      throw new NoiseError(
        'message-too-large',
        `session encrypt: plaintext length ${plaintext.length}, limit ${MAX_PLAINTEXT_LENGTH}; split it into several messages`,
      );
    }
    return this.#send.encryptWithAd(EMPTY, plaintext, headroom);
  }

  decrypt(ciphertext: Uint8Array): Uint8Array {
    if (this.#receiveFailure) {
      throw new NoiseError(
        'invalid-state',
        `session decrypt: an earlier message failed (${this.#receiveFailure.reason}); the stream is unusable`,
        {
          cause: this.#receiveFailure,
        },
      );
    }
    try {
      return this.#receive.decryptWithAd(EMPTY, ciphertext);
    } catch (error) {
      // On an ordered channel a bad message means corruption or an attack, never loss:
      // nothing after it can be trusted to line up, so the direction stays closed.
      if (error instanceof NoiseError) this.#receiveFailure = error;
      throw error;
    }
  }
}
