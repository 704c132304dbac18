/**
 * Transport encryption for datagrams (UDP, TURN relays): packets may be lost, duplicated or
 * reordered, so the receiver cannot keep an implicit counter as Noise's CipherState does for
 * streams. Instead each packet carries its nonce, and a sliding window refuses replays, as in
 * WireGuard's transport data messages and DTLS 1.3 record numbers. Noise allows exactly this:
 * a CipherState whose nonce the application sets per message. @see Noise rev 34 §5.1 SetNonce, §11.4
 *
 * Packet:  counter (8 bytes, little-endian) | ChaChaPoly ciphertext | tag (16 bytes)
 *
 * The counter is the 64-bit Noise nonce n for this packet, in the byte order the ChaChaPoly
 * nonce uses; the tag covers it (through the nonce) and any caller-supplied associated data.
 * Keys: a second Split() of the handshake's chaining key with the label "natpunch/1 datagram"
 * (see SymmetricState.split), so datagram keys never equal the stream keys of the same session.
 * @see RFC 6479 (replay window), docs/decisions/002-noise-handshake.md
 */
import { TAG_LENGTH } from './cipher-chachapoly.js';
import type { CipherState } from './cipher-state.js';
import { NoiseError } from './errors.js';
import type { TransportKeys } from './handshake-state.js';
import { DEFAULT_REPLAY_WINDOW, ReplayWindow } from './replay-window.js';

const COUNTER_LENGTH = 8;
/** Bytes a sealed packet adds to its plaintext. */
export const DATAGRAM_OVERHEAD = COUNTER_LENGTH + TAG_LENGTH;
const EMPTY = new Uint8Array(0);
/** Counters above 2^53-1 are never sent (CipherState stops there); the high word must fit. */
const MAX_HIGH_WORD = 2 ** 21 - 1;

export interface DatagramCipherOptions {
  /** Replay window in packets (a multiple of 32). Default 2048. */
  replayWindow?: number;
}

export class DatagramCipher {
  readonly #send: CipherState;
  readonly #receive: CipherState;
  readonly #window: ReplayWindow;

  constructor(keys: TransportKeys, options: DatagramCipherOptions = {}) {
    this.#send = keys.send;
    this.#receive = keys.receive;
    this.#window = new ReplayWindow(options.replayWindow ?? DEFAULT_REPLAY_WINDOW);
  }

  /** Packets sealed so far (= the counter of the next one). */
  get sent(): number {
    return this.#send.nonce;
  }

  /**
   * Encrypts one datagram. `ad` (optional) is authenticated but not sent; open() needs the same.
   * With `headroom`, the packet starts that many bytes into the returned buffer, room for the
   * carrier's own header, so the ciphertext is written once, into its final place.
   */
  seal(plaintext: Uint8Array, ad: Uint8Array = EMPTY, headroom = 0): Uint8Array {
    const counter = this.#send.nonce;
    const out = this.#send.encryptWithAd(ad, plaintext, headroom + COUNTER_LENGTH);
    const view = new DataView(out.buffer, out.byteOffset + headroom, COUNTER_LENGTH);
    view.setUint32(0, counter >>> 0, true);
    view.setUint32(4, Math.floor(counter / 2 ** 32), true);
    return out;
  }

  /**
   * Decrypts one datagram. Throws NoiseError: 'malformed-message' (too short),
   * 'replayed' (seen before, or older than the window), 'decrypt-failed' (forged or corrupted).
   * Only an authentic packet moves the replay window.
   */
  open(packet: Uint8Array, ad: Uint8Array = EMPTY): Uint8Array {
    if (packet.length < DATAGRAM_OVERHEAD) {
      throw new NoiseError(
        'malformed-message',
        `datagram: length ${packet.length}, expected at least ${DATAGRAM_OVERHEAD}`,
      );
    }
    const view = new DataView(packet.buffer, packet.byteOffset, COUNTER_LENGTH);
    const high = view.getUint32(4, true);
    if (high > MAX_HIGH_WORD) {
      throw new NoiseError(
        'malformed-message',
        `datagram: counter high word ${high} beyond 2^53, never sent by natpunch`,
      );
    }
    const counter = high * 2 ** 32 + view.getUint32(0, true);
    if (!this.#window.check(counter)) {
      const age = this.#window.newest - counter;
      throw new NoiseError(
        'replayed',
        age >= this.#window.size
          ? `datagram ${counter}: older than the replay window (${age} behind, window ${this.#window.size})`
          : `datagram ${counter}: already received`,
      );
    }
    this.#receive.setNonce(counter);
    let plaintext: Uint8Array;
    try {
      plaintext = this.#receive.decryptWithAd(ad, packet.subarray(COUNTER_LENGTH));
    } catch (error) {
      if (!(error instanceof NoiseError)) throw error;
      throw new NoiseError(error.reason, `datagram ${counter}: ${error.message}`, { cause: error });
    }
    this.#window.accept(counter);
    return plaintext;
  }
}
