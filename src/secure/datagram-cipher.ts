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
import { MAX_NONCE, TAG_LENGTH } from './cipher-chachapoly.js';
import type { ChaChaPolyImplementation, ChaChaPolyKey } from './chachapoly-key.js';
import { NoiseError } from './errors.js';
import type { TransportKeys } from './handshake-state.js';
import { DEFAULT_REPLAY_WINDOW, ReplayWindow } from './replay-window.js';

const COUNTER_LENGTH = 8;
/** Bytes a sealed packet adds to its plaintext. */
export const DATAGRAM_OVERHEAD = COUNTER_LENGTH + TAG_LENGTH;
const EMPTY = new Uint8Array(0);
/** Counters above 2^53-1 are never sent (CipherState stops there); the high word must fit. */
const MAX_HIGH_WORD = 2 ** 21 - 1;

/** Options of a session's datagram cipher. */
export interface DatagramCipherOptions {
  /** Replay window in packets (a multiple of 32). Default 2048. */
  replayWindow?: number;
  /**
   * Seal and open with native/aead when it loads (default true); false: node:crypto. Both give
   * the same bytes. NATPUNCH_NO_NATIVE=1 turns the addon off for the whole process.
   */
  native?: boolean;
}

/**
 * Transport encryption for datagrams that may be lost, duplicated or reordered: each packet
 * carries its 64-bit counter, and a sliding window refuses replays (RFC 6479), as WireGuard
 * does. Get one from {@link SecureSession.datagram}; its keys differ from the stream's.
 */
export class DatagramCipher {
  readonly #send: ChaChaPolyKey;
  readonly #receive: ChaChaPolyKey;
  readonly #window: ReplayWindow;
  /** The counter of the next packet sealed: the Noise nonce n of the send key. */
  #counter: number;

  /** @internal Made by the session (`session.datagram`) from the handshake's keys. */
  constructor(keys: TransportKeys, options: DatagramCipherOptions = {}) {
    const native = options.native ?? true;
    this.#send = keys.send.chaChaPolyKey({ native });
    this.#receive = keys.receive.chaChaPolyKey({ native });
    this.#counter = keys.send.nonce;
    this.#window = new ReplayWindow(options.replayWindow ?? DEFAULT_REPLAY_WINDOW);
  }

  /** Packets sealed so far (= the counter of the next one). */
  get sent(): number {
    return this.#counter;
  }

  /** Which AEAD seals and opens: 'native' (native/aead) or 'node:crypto'. */
  get implementation(): ChaChaPolyImplementation {
    return this.#send.implementation;
  }

  /**
   * Encrypts one datagram. `ad` (optional) is authenticated but not sent; open() needs the same.
   * With `headroom`, the packet starts that many bytes into the returned buffer, room for the
   * carrier's own header, so the ciphertext is written once, into its final place.
   */
  seal(plaintext: Uint8Array, ad: Uint8Array = EMPTY, headroom = 0): Uint8Array {
    this.#reserve(1);
    const out = new Uint8Array(headroom + DATAGRAM_OVERHEAD + plaintext.length);
    this.#sealInto(plaintext, ad, out, headroom);
    return out;
  }

  /**
   * seal() for a burst, in order (consecutive counters): the packets are views of one buffer,
   * which saves an allocation per datagram. Meant for packets handed to the kernel at once
   * (a sendmmsg burst): keeping one of them keeps the whole burst's memory.
   */
  sealBatch(plaintexts: readonly Uint8Array[], ad: Uint8Array = EMPTY, headroom = 0): Uint8Array[] {
    this.#reserve(plaintexts.length);
    let total = 0;
    for (const plaintext of plaintexts) total += headroom + DATAGRAM_OVERHEAD + plaintext.length;
    const slab = new ArrayBuffer(total);
    const packets = new Array<Uint8Array>(plaintexts.length);
    let offset = 0;
    for (let i = 0; i < plaintexts.length; i++) {
      const plaintext = plaintexts[i]!;
      const length = headroom + DATAGRAM_OVERHEAD + plaintext.length;
      const out = new Uint8Array(slab, offset, length);
      this.#sealInto(plaintext, ad, out, headroom);
      packets[i] = out;
      offset += length;
    }
    return packets;
  }

  /** Refuses before sealing anything when `count` more counters would reach the limit. */
  #reserve(count: number): void {
    if (this.#counter + count > MAX_NONCE) {
      throw new NoiseError(
        'nonce-exhausted',
        `datagram: counter ${this.#counter} + ${count} would reach the limit ${MAX_NONCE}; run a new handshake`,
      );
    }
  }

  #sealInto(plaintext: Uint8Array, ad: Uint8Array, out: Uint8Array, headroom: number): void {
    const counter = this.#counter;
    this.#send.sealInto(counter, ad, plaintext, out, headroom + COUNTER_LENGTH);
    this.#counter = counter + 1;
    const low = counter >>> 0;
    const high = Math.floor(counter / 2 ** 32);
    out[headroom] = low;
    out[headroom + 1] = low >>> 8;
    out[headroom + 2] = low >>> 16;
    out[headroom + 3] = low >>> 24;
    out[headroom + 4] = high;
    out[headroom + 5] = high >>> 8;
    out[headroom + 6] = high >>> 16;
    out[headroom + 7] = high >>> 24;
  }

  /**
   * Decrypts one datagram. Throws NoiseError: 'malformed-message' (too short),
   * 'replayed' (seen before, or older than the window), 'decrypt-failed' (forged or corrupted),
   * 'nonce-exhausted' (counter 2^53-1, which natpunch never sends).
   * Only an authentic packet moves the replay window.
   */
  open(packet: Uint8Array, ad: Uint8Array = EMPTY): Uint8Array {
    return this.#open(packet, ad, false);
  }

  /**
   * open() for a caller that owns `packet` and will not read it again (a datagram just
   * received): natively the plaintext is decrypted into the packet's own bytes and returned as a
   * view of them, which saves an allocation per datagram (~0.8 µs, decision 007). Afterwards the
   * packet's bytes after the counter hold the plaintext, or zeros if it was forged; a refusal for
   * any other reason leaves them untouched. The same errors as open().
   */
  openInPlace(packet: Uint8Array, ad: Uint8Array = EMPTY): Uint8Array {
    return this.#open(packet, ad, true);
  }

  #open(packet: Uint8Array, ad: Uint8Array, inPlace: boolean): Uint8Array {
    if (packet.length < DATAGRAM_OVERHEAD) {
      throw new NoiseError(
        'malformed-message',
        `datagram: length ${packet.length}, expected at least ${DATAGRAM_OVERHEAD}`,
      );
    }
    const high = packet[4]! | (packet[5]! << 8) | (packet[6]! << 16) | (packet[7]! << 24);
    if (high < 0 || high > MAX_HIGH_WORD) {
      throw new NoiseError(
        'malformed-message',
        `datagram: counter high word ${high >>> 0} beyond 2^53, never sent by natpunch`,
      );
    }
    const low = (packet[0]! | (packet[1]! << 8) | (packet[2]! << 16) | (packet[3]! << 24)) >>> 0;
    const counter = high * 2 ** 32 + low;
    if (!this.#window.check(counter)) {
      const age = this.#window.newest - counter;
      throw new NoiseError(
        'replayed',
        age >= this.#window.size
          ? `datagram ${counter}: older than the replay window (${age} behind, window ${this.#window.size})`
          : `datagram ${counter}: already received`,
      );
    }
    if (counter >= MAX_NONCE) {
      throw new NoiseError('nonce-exhausted', `datagram ${counter}: counter at the limit ${MAX_NONCE}, never sent by natpunch`);
    }
    let plaintext: Uint8Array;
    try {
      const sealed = packet.subarray(COUNTER_LENGTH);
      plaintext = inPlace ? this.#receive.openInPlace(counter, ad, sealed) : this.#receive.open(counter, ad, sealed);
    } catch (error) {
      if (!(error instanceof NoiseError)) throw error;
      throw new NoiseError(error.reason, `datagram ${counter}: ${error.message}`, { cause: error });
    }
    this.#window.accept(counter);
    return plaintext;
  }

  /**
   * Frees the keys now (natively: their OpenSSL contexts) instead of at garbage collection.
   * Afterwards seal() and open() throw NoiseError 'invalid-state'. Idempotent.
   */
  dispose(): void {
    this.#send.dispose();
    this.#receive.dispose();
  }
}
