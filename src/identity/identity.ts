/**
 * A peer's long-term identity: an Ed25519 key pair whose public half, as text, is the peer id.
 * @see RFC 8032 §5.1 (Ed25519)
 */
import { generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { peerIdFromPublicKey } from './peer-id.js';
import { publicKeyFromRaw, RAW_KEY_LENGTH, rawPublicKey } from './raw-key.js';

/** A peer's Ed25519 key pair; its public key, as text, is the peer id. */
export interface Identity {
  /** Text form of publicKey; see peer-id.ts. */
  readonly peerId: string;
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** Ed25519 signature (64 bytes) over `data`. */
  sign(data: Uint8Array): Uint8Array;
  /** The Ed25519 private key (keep it secret: it is the identity). */
  readonly privateKey: KeyObject;
}

/** Length of an Ed25519 signature. @see RFC 8032 §5.1.6 */
export const SIGNATURE_LENGTH = 64;

/** Wraps an existing Ed25519 private KeyObject. Throws TypeError for any other key type. */
export function identityFromPrivateKey(privateKey: KeyObject): Identity {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') {
    throw new TypeError(
      `identity: expected an Ed25519 private key, got a ${privateKey.asymmetricKeyType ?? 'symmetric'} ${privateKey.type} key`,
    );
  }
  const publicKey = rawPublicKey(privateKey);
  return Object.freeze({
    peerId: peerIdFromPublicKey(publicKey),
    publicKey,
    privateKey,
    sign: (data: Uint8Array): Uint8Array => new Uint8Array(cryptoSign(null, data, privateKey)),
  });
}

/** A new, random identity, kept in memory only ({@link loadOrCreateIdentity} stores one in a key file). */
export function generateIdentity(): Identity {
  return identityFromPrivateKey(generateKeyPairSync('ed25519').privateKey);
}

/**
 * Verifies an Ed25519 signature. Returns false for a wrong signature and for malformed
 * inputs (wrong lengths, a public key that is not a curve point): a verifier has no use for
 * telling those apart, and throwing would invite callers to treat "threw" as "maybe valid".
 */
export function verify(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== RAW_KEY_LENGTH || signature.length !== SIGNATURE_LENGTH) return false;
  try {
    return cryptoVerify(null, data, publicKeyFromRaw('ed25519', publicKey), signature);
  } catch {
    return false;
  }
}
