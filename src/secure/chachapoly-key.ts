/**
 * One ChaChaPoly key used for many messages whose nonces the caller chooses (the datagram
 * cipher: one AEAD per datagram, its counter the nonce). Two implementations, byte for byte the
 * same (AEAD_CHACHA20_POLY1305 with Noise's nonce layout):
 *
 * - `native`: an OpenSSL cipher context made once per key in a small N-API addon
 *   (native/aead), each message only setting the nonce: ~1 µs per 1200-byte datagram.
 * - `node:crypto`: createCipheriv per message, as CipherState does: ~9 µs, mostly the fixed cost
 *   of building a cipher per call.
 *
 * The native one is used when the addon is built and loads (Linux; not with
 * NATPUNCH_NO_NATIVE=1). @see Noise rev 34 §4.2, §12.3; RFC 8439 §2.8;
 * docs/decisions/007-datagram-aead.md
 */
import { type AddonAvailability, addonAvailability, loadAddon } from '../native/load-addon.js';
import { aeadDecrypt, aeadEncryptInto, KEY_LENGTH, NONCE_LENGTH, noiseNonce, TAG_LENGTH } from './cipher-chachapoly.js';
import { NoiseError } from './errors.js';

/** The addon's functions (native/aead/aead.c). */
export interface AeadAddon {
  createKey(key: Uint8Array): AeadHandle;
  /** ENCRYPT(k, counter, ad, plaintext) written at out[offset]: plaintext.length + 16 bytes. */
  seal(handle: AeadHandle, counter: number, ad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): void;
  /** DECRYPT into out[offset]; false (and what it wrote zeroed) when the tag does not match. */
  open(handle: AeadHandle, counter: number, ad: Uint8Array, sealed: Uint8Array, out: Uint8Array, offset: number): boolean;
  free(handle: AeadHandle): void;
}
declare const aeadHandle: unique symbol;
/** An OpenSSL cipher context holding one key (an N-API external). */
export type AeadHandle = { readonly [aeadHandle]: true };

const ADDON = ['aead', 'aead', "the OpenSSL symbols Node exports (EVP_*)"] as const;

/** Whether the native AEAD can run here, and if not, why. */
export function nativeAeadAvailable(): AddonAvailability {
  return addonAvailability(...ADDON);
}

/** Which ChaCha20-Poly1305 implementation seals: native/aead or node:crypto (the same bytes). */
export type ChaChaPolyImplementation = 'native' | 'node:crypto';

export interface ChaChaPolyKey {
  readonly implementation: ChaChaPolyImplementation;
  /** ENCRYPT(k, n, ad, plaintext) = ciphertext || tag, written at out[offset] (plaintext.length + 16 bytes). */
  sealInto(n: number, ad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): void;
  /** DECRYPT(k, n, ad, ciphertext || tag); NoiseError 'decrypt-failed' when the tag does not match. */
  open(n: number, ad: Uint8Array, sealed: Uint8Array): Uint8Array;
  /**
   * open() that may decrypt into `sealed`'s own bytes and return a view of them (the native one
   * does; node:crypto returns a new array). Afterwards `sealed` holds plaintext, or zeros where
   * it was forged: only for callers that own the buffer and do not read it again.
   */
  openInPlace(n: number, ad: Uint8Array, sealed: Uint8Array): Uint8Array;
  /** Forgets the key (natively: frees the context now rather than at garbage collection). Idempotent. */
  dispose(): void;
}

/**
 * A ChaChaPolyKey for `key`: native when `native` (default true) and the addon loads, else
 * node:crypto. `n` must be a safe integer counter; callers enforce their own limits.
 */
export function createChaChaPolyKey(key: Uint8Array, options: { native?: boolean } = {}): ChaChaPolyKey {
  if (key.length !== KEY_LENGTH) throw new RangeError(`ChaChaPoly: key length ${key.length}, expected ${KEY_LENGTH}`);
  if (options.native !== false) {
    const loaded = loadAddon<AeadAddon>(...ADDON);
    if ('addon' in loaded) return new NativeChaChaPolyKey(loaded.addon, key);
  }
  return new NodeChaChaPolyKey(key);
}

function tagMismatch(): NoiseError {
  return new NoiseError('decrypt-failed', 'ChaChaPoly: authentication tag mismatch (tampered, or keys differ)');
}

function disposed(): NoiseError {
  return new NoiseError('invalid-state', 'ChaChaPoly: key used after dispose()');
}

function tooShort(sealed: Uint8Array): NoiseError {
  return new NoiseError(
    'malformed-message',
    `ChaChaPoly: ciphertext length ${sealed.length}, expected at least the ${TAG_LENGTH}-byte tag`,
  );
}

class NativeChaChaPolyKey implements ChaChaPolyKey {
  readonly implementation = 'native';
  readonly #addon: AeadAddon;
  #handle: AeadHandle | undefined;

  constructor(addon: AeadAddon, key: Uint8Array) {
    this.#addon = addon;
    // Freed by dispose() or, if the owner never calls it, by the handle's finalizer.
    this.#handle = addon.createKey(key);
  }

  sealInto(n: number, ad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): void {
    if (this.#handle === undefined) throw disposed();
    this.#addon.seal(this.#handle, n, ad, plaintext, out, offset);
  }

  open(n: number, ad: Uint8Array, sealed: Uint8Array): Uint8Array {
    return this.#open(n, ad, sealed, false);
  }

  openInPlace(n: number, ad: Uint8Array, sealed: Uint8Array): Uint8Array {
    return this.#open(n, ad, sealed, true);
  }

  #open(n: number, ad: Uint8Array, sealed: Uint8Array, inPlace: boolean): Uint8Array {
    if (this.#handle === undefined) throw disposed();
    if (sealed.length < TAG_LENGTH) throw tooShort(sealed);
    // In place, the plaintext overwrites the ciphertext exactly (EVP allows that, not a partial overlap).
    const plaintext = inPlace ? sealed.subarray(0, sealed.length - TAG_LENGTH) : new Uint8Array(sealed.length - TAG_LENGTH);
    if (!this.#addon.open(this.#handle, n, ad, sealed, plaintext, 0)) throw tagMismatch();
    return plaintext;
  }

  dispose(): void {
    if (this.#handle === undefined) return;
    this.#addon.free(this.#handle);
    this.#handle = undefined;
  }
}

class NodeChaChaPolyKey implements ChaChaPolyKey {
  readonly implementation = 'node:crypto';
  #key: Uint8Array | undefined;
  /** Reused: createCipheriv copies the nonce, and its first 4 bytes stay zero. */
  readonly #nonce = new Uint8Array(NONCE_LENGTH);

  constructor(key: Uint8Array) {
    this.#key = new Uint8Array(key);
  }

  sealInto(n: number, ad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): void {
    if (this.#key === undefined) throw disposed();
    aeadEncryptInto(this.#key, noiseNonce(n, this.#nonce), ad, plaintext, out, offset);
  }

  open(n: number, ad: Uint8Array, sealed: Uint8Array): Uint8Array {
    if (this.#key === undefined) throw disposed();
    return aeadDecrypt(this.#key, noiseNonce(n, this.#nonce), ad, sealed);
  }

  openInPlace(n: number, ad: Uint8Array, sealed: Uint8Array): Uint8Array {
    return this.open(n, ad, sealed);
  }

  dispose(): void {
    this.#key?.fill(0);
    this.#key = undefined;
  }
}
