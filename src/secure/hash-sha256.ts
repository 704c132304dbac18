/**
 * The Noise hash functions for SHA256: HASH, HMAC-HASH and HKDF.
 * @see Noise rev 34 §4.3, §12.5; RFC 2104 (HMAC); RFC 5869 (HKDF, of which Noise's HKDF is
 * the case salt = chaining_key, info = empty, two or three outputs of HASHLEN)
 */
import { createHash, createHmac } from 'node:crypto';

/** HASHLEN for SHA256. */
export const HASHLEN = 32;

export function hash(...parts: Uint8Array[]): Uint8Array {
  const digest = createHash('sha256');
  for (const part of parts) digest.update(part);
  return new Uint8Array(digest.digest());
}

export function hmacHash(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const mac = createHmac('sha256', key);
  for (const part of parts) mac.update(part);
  return new Uint8Array(mac.digest());
}

/**
 * HKDF(chaining_key, input_key_material, num_outputs): temp_key = HMAC(ck, ikm), then each
 * output_i = HMAC(temp_key, output_{i-1} || byte(i)).
 */
export function hkdf(chainingKey: Uint8Array, inputKeyMaterial: Uint8Array, outputs: 2): [Uint8Array, Uint8Array];
export function hkdf(
  chainingKey: Uint8Array,
  inputKeyMaterial: Uint8Array,
  outputs: 3,
): [Uint8Array, Uint8Array, Uint8Array];
export function hkdf(chainingKey: Uint8Array, inputKeyMaterial: Uint8Array, outputs: 2 | 3): Uint8Array[] {
  const tempKey = hmacHash(chainingKey, inputKeyMaterial);
  const results: Uint8Array[] = [];
  let previous: Uint8Array = new Uint8Array(0);
  for (let i = 1; i <= outputs; i++) {
    previous = hmacHash(tempKey, previous, Uint8Array.of(i));
    results.push(previous);
  }
  return results;
}
