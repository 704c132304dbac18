/**
 * CipherState: a key k (possibly empty) and a nonce counter n.
 * @see Noise rev 34 §5.1
 */
import { decrypt, encrypt, KEY_LENGTH, MAX_NONCE, rekey } from './cipher-chachapoly.js';
import { type ChaChaPolyKey, createChaChaPolyKey } from './chachapoly-key.js';
import { NoiseError } from './errors.js';

export class CipherState {
  #key: Uint8Array | undefined;
  #nonce = 0;

  constructor(key?: Uint8Array) {
    if (key) this.initializeKey(key);
  }

  /** InitializeKey(key): sets k and resets n to 0. */
  initializeKey(key: Uint8Array): void {
    if (key.length !== KEY_LENGTH) {
      throw new RangeError(`CipherState: key length ${key.length}, expected ${KEY_LENGTH}`);
    }
    this.#key = new Uint8Array(key); // a copy, also when given a Buffer (whose slice() is a view)
    this.#nonce = 0;
  }

  hasKey(): boolean {
    return this.#key !== undefined;
  }

  /** The next nonce this state will use. */
  get nonce(): number {
    return this.#nonce;
  }

  /** SetNonce(nonce): for applications that carry nonces themselves. */
  setNonce(nonce: number): void {
    if (!Number.isSafeInteger(nonce) || nonce < 0) throw new RangeError(`CipherState: nonce ${nonce} is not a counter`);
    this.#nonce = nonce;
  }

  /**
   * EncryptWithAd(ad, plaintext): plaintext unchanged while there is no key. With `headroom`,
   * the result starts that many bytes into the returned buffer (left for the caller's header).
   */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array, headroom = 0): Uint8Array {
    if (!this.#key) {
      if (headroom === 0) return plaintext;
      const out = new Uint8Array(headroom + plaintext.length);
      out.set(plaintext, headroom);
      return out;
    }
    this.#checkNonce();
    const ciphertext = encrypt(this.#key, this.#nonce, ad, plaintext, headroom);
    this.#nonce++;
    return ciphertext;
  }

  /**
   * DecryptWithAd(ad, ciphertext). On an authentication failure n is not incremented, as the
   * spec requires, so a forged message cannot desynchronise the counters.
   */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (!this.#key) return ciphertext;
    this.#checkNonce();
    const plaintext = decrypt(this.#key, this.#nonce, ad, ciphertext);
    this.#nonce++;
    return plaintext;
  }

  /**
   * The key as a ChaChaPolyKey, for a caller that carries nonces itself and encrypts many
   * messages with it (DatagramCipher); natively one OpenSSL context for all of them. The key is
   * copied: a later rekey() here does not change it.
   */
  chaChaPolyKey(options: { native?: boolean } = {}): ChaChaPolyKey {
    if (!this.#key) throw new NoiseError('invalid-state', 'CipherState: no key to hand over');
    return createChaChaPolyKey(this.#key, options);
  }

  /** Rekey(): k = REKEY(k), n unchanged. @see Noise rev 34 §11.3 */
  rekey(): void {
    if (!this.#key) throw new NoiseError('invalid-state', 'CipherState: rekey without a key');
    this.#key = rekey(this.#key);
  }

  #checkNonce(): void {
    if (this.#nonce >= MAX_NONCE) {
      throw new NoiseError(
        'nonce-exhausted',
        `CipherState: nonce ${this.#nonce} reached the limit; run a new handshake`,
      );
    }
  }
}
