/**
 * SymmetricState: the chaining key ck and handshake hash h, plus the CipherState they key.
 * @see Noise rev 34 §5.2
 */
import { CipherState } from './cipher-state.js';
import { hash, HASHLEN, hkdf } from './hash-sha256.js';

const EMPTY = new Uint8Array(0);

export class SymmetricState {
  readonly #cipher = new CipherState();
  #chainingKey: Uint8Array;
  #hash: Uint8Array;

  /** InitializeSymmetric(protocol_name). */
  constructor(protocolName: string) {
    const name = new TextEncoder().encode(protocolName);
    if (name.length <= HASHLEN) {
      this.#hash = new Uint8Array(HASHLEN);
      this.#hash.set(name);
    } else {
      this.#hash = hash(name);
    }
    this.#chainingKey = this.#hash.slice();
  }

  /** h: after the handshake, a unique id of the session for channel binding. @see §11.2 */
  get handshakeHash(): Uint8Array {
    return this.#hash.slice();
  }

  hasKey(): boolean {
    return this.#cipher.hasKey();
  }

  mixKey(inputKeyMaterial: Uint8Array): void {
    const [chainingKey, tempKey] = hkdf(this.#chainingKey, inputKeyMaterial, 2);
    this.#chainingKey = chainingKey;
    this.#cipher.initializeKey(tempKey);
  }

  mixHash(data: Uint8Array): void {
    this.#hash = hash(this.#hash, data);
  }

  /** MixKeyAndHash(ikm): for psk tokens. */
  mixKeyAndHash(inputKeyMaterial: Uint8Array): void {
    const [chainingKey, tempHash, tempKey] = hkdf(this.#chainingKey, inputKeyMaterial, 3);
    this.#chainingKey = chainingKey;
    this.mixHash(tempHash);
    this.#cipher.initializeKey(tempKey);
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ciphertext = this.#cipher.encryptWithAd(this.#hash, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const plaintext = this.#cipher.decryptWithAd(this.#hash, ciphertext);
    this.mixHash(ciphertext);
    return plaintext;
  }

  /**
   * Split(): the two transport CipherStates (initiator->responder, responder->initiator).
   *
   * The spec's Split() is HKDF(ck, zerolen, 2); that is what `split()` does. natpunch also
   * passes a non-empty label to derive a second, independent pair from the same ck (the
   * datagram keys): HKDF with a different input key material is a different PRF output, so
   * the two pairs never share a key and their nonces can never collide.
   */
  split(label: Uint8Array = EMPTY): [CipherState, CipherState] {
    const [first, second] = hkdf(this.#chainingKey, label, 2);
    return [new CipherState(first), new CipherState(second)];
  }
}
