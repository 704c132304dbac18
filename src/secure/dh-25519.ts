/**
 * The Noise DH functions for 25519: X25519 through node:crypto.
 * @see Noise rev 34 §4.1, §12.1; RFC 7748 §5, §6.1
 */
import { diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { privateKeyFromRaw, publicKeyFromRaw, rawPublicKey } from '../identity/raw-key.js';
import { NoiseError } from './errors.js';

/** DHLEN for 25519. */
export const DHLEN = 32;

export interface KeyPair {
  /** Raw 32-byte X25519 public key, as it goes on the wire. */
  readonly publicKey: Uint8Array;
  readonly privateKey: KeyObject;
}

/** GENERATE_KEYPAIR(). */
export function generateKeyPair(): KeyPair {
  const { privateKey } = generateKeyPairSync('x25519');
  return { publicKey: rawPublicKey(privateKey), privateKey };
}

/** A key pair from a raw 32-byte private scalar (test vectors, stored keys). */
export function keyPairFromPrivateKey(raw: Uint8Array): KeyPair {
  const privateKey = privateKeyFromRaw('x25519', raw);
  return { publicKey: rawPublicKey(privateKey), privateKey };
}

/**
 * DH(key_pair, public_key). Noise lets an implementation abort on invalid public keys; we do
 * for any key OpenSSL refuses and for an all-zero result (a low-order point), so a peer
 * cannot force a known shared secret. @see RFC 7748 §6.1
 */
export function dh(keyPair: KeyPair, publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== DHLEN) {
    throw new NoiseError('invalid-key', `X25519: public key length ${publicKey.length}, expected ${DHLEN}`);
  }
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: keyPair.privateKey, publicKey: publicKeyFromRaw('x25519', publicKey) });
  } catch (error) {
    throw new NoiseError('invalid-key', 'X25519: the peer public key was refused (low-order point?)', { cause: error });
  }
  if (shared.every((byte) => byte === 0)) {
    throw new NoiseError('invalid-key', 'X25519: all-zero shared secret (the peer sent a low-order point)');
  }
  return new Uint8Array(shared);
}
