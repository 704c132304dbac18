/**
 * The Noise cipher functions for ChaChaPoly: AEAD_CHACHA20_POLY1305 with Noise's nonce layout.
 * @see Noise rev 34 §4.2, §12.3; RFC 8439 §2.8
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { NoiseError } from './errors.js';

export const KEY_LENGTH = 32;
/** Poly1305 tag length. @see RFC 8439 §2.8 */
export const TAG_LENGTH = 16;
export const NONCE_LENGTH = 12;

/**
 * The largest counter natpunch will use. Noise reserves 2^64-1 and lets implementations stop
 * earlier; 2^53-1 keeps counters exact in a JS number and is ~285 years at a million
 * messages per second.
 */
export const MAX_NONCE = Number.MAX_SAFE_INTEGER;

/**
 * The 96-bit ChaChaPoly nonce for counter n: 32 bits of zeros followed by the little-endian
 * encoding of n (64 bits). `n = 'max'` gives 2^64-1, which only REKEY uses. Written into
 * `nonce` when given (a 12-byte array whose first 4 bytes are zero, reused across calls).
 * @see Noise rev 34 §12.3
 */
export function noiseNonce(n: number | 'max', nonce = new Uint8Array(NONCE_LENGTH)): Uint8Array {
  if (n === 'max') {
    nonce.fill(0xff, 4);
    return nonce;
  }
  const low = n >>> 0;
  const high = Math.floor(n / 2 ** 32);
  nonce[4] = low;
  nonce[5] = low >>> 8;
  nonce[6] = low >>> 16;
  nonce[7] = low >>> 24;
  nonce[8] = high;
  nonce[9] = high >>> 8;
  nonce[10] = high >>> 16;
  nonce[11] = high >>> 24;
  return nonce;
}

/**
 * AEAD_CHACHA20_POLY1305 encryption: ciphertext || 16-byte tag, after `headroom` bytes left for
 * the caller (a frame's length prefix), so the ciphertext is copied once, into its final place.
 */
export function aeadEncrypt(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array, headroom = 0): Uint8Array {
  const out = new Uint8Array(headroom + plaintext.length + TAG_LENGTH);
  aeadEncryptInto(key, nonce, ad, plaintext, out, headroom);
  return out;
}

/** aeadEncrypt into `out` at `offset` (plaintext.length + 16 bytes), for callers that lay out buffers themselves. */
export function aeadEncryptInto(
  key: Uint8Array,
  nonce: Uint8Array,
  ad: Uint8Array,
  plaintext: Uint8Array,
  out: Uint8Array,
  offset: number,
): void {
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_LENGTH });
  cipher.setAAD(ad, { plaintextLength: plaintext.length });
  const body = cipher.update(plaintext);
  cipher.final();
  out.set(body, offset);
  out.set(cipher.getAuthTag(), offset + body.length);
}

/**
 * AEAD_CHACHA20_POLY1305 decryption. Releases the plaintext only after the tag has been
 * checked; throws NoiseError 'decrypt-failed' otherwise.
 */
export function aeadDecrypt(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  if (ciphertext.length < TAG_LENGTH) {
    throw new NoiseError(
      'malformed-message',
      `ChaChaPoly: ciphertext length ${ciphertext.length}, expected at least the ${TAG_LENGTH}-byte tag`,
    );
  }
  const bodyLength = ciphertext.length - TAG_LENGTH;
  const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_LENGTH });
  decipher.setAuthTag(ciphertext.subarray(bodyLength));
  decipher.setAAD(ad, { plaintextLength: bodyLength });
  const body = decipher.update(ciphertext.subarray(0, bodyLength));
  try {
    decipher.final();
  } catch (error) {
    throw new NoiseError('decrypt-failed', 'ChaChaPoly: authentication tag mismatch (tampered, or keys differ)', {
      cause: error,
    });
  }
  return new Uint8Array(body.buffer, body.byteOffset, body.length);
}

/** ENCRYPT(k, n, ad, plaintext). @see Noise rev 34 §4.2 */
export function encrypt(key: Uint8Array, n: number, ad: Uint8Array, plaintext: Uint8Array, headroom = 0): Uint8Array {
  return aeadEncrypt(key, noiseNonce(n), ad, plaintext, headroom);
}

/** DECRYPT(k, n, ad, ciphertext). @see Noise rev 34 §4.2 */
export function decrypt(key: Uint8Array, n: number, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return aeadDecrypt(key, noiseNonce(n), ad, ciphertext);
}

/** REKEY(k): the first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes). @see Noise rev 34 §4.2 */
export function rekey(key: Uint8Array): Uint8Array {
  return aeadEncrypt(key, noiseNonce('max'), new Uint8Array(0), new Uint8Array(KEY_LENGTH)).slice(0, KEY_LENGTH);
}
