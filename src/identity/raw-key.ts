/**
 * Raw 32-byte Curve25519 keys <-> node:crypto KeyObjects.
 *
 * node:crypto has no "raw" import format for Ed25519/X25519, so we wrap the 32 raw bytes in
 * the fixed DER header of a SubjectPublicKeyInfo (RFC 5280 §4.1) or a PKCS#8 PrivateKeyInfo
 * (RFC 5208 §5). For these two curves the headers never vary: only the OID differs.
 * @see RFC 8410 §3 (id-X25519 = 1.3.101.110, id-Ed25519 = 1.3.101.112), §4, §7
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';

export type CurveKeyType = 'ed25519' | 'x25519';

/** Length of every raw Ed25519 / X25519 key, public or private. @see RFC 8032 §5.1.5, RFC 7748 §5 */
export const RAW_KEY_LENGTH = 32;

const OID_LAST_BYTE: Record<CurveKeyType, number> = { x25519: 0x6e, ed25519: 0x70 };

function spkiHeader(type: CurveKeyType): Uint8Array {
  // SEQUENCE { SEQUENCE { OID 1.3.101.x }, BIT STRING (0 unused bits) <32 bytes> }
  return Uint8Array.of(0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, OID_LAST_BYTE[type], 0x03, 0x21, 0x00);
}

function pkcs8Header(type: CurveKeyType): Uint8Array {
  // SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.x }, OCTET STRING { OCTET STRING <32 bytes> } }
  // prettier-ignore
  return Uint8Array.of(
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, OID_LAST_BYTE[type], 0x04, 0x22, 0x04, 0x20,
  );
}

function withHeader(header: Uint8Array, raw: Uint8Array, what: string): Buffer {
  if (raw.length !== RAW_KEY_LENGTH) {
    throw new RangeError(`${what}: raw key length ${raw.length}, expected ${RAW_KEY_LENGTH}`);
  }
  return Buffer.concat([header, raw]);
}

/** Imports a raw 32-byte public key. Throws RangeError on a wrong length. */
export function publicKeyFromRaw(type: CurveKeyType, raw: Uint8Array): KeyObject {
  const der = withHeader(spkiHeader(type), raw, `${type} public key`);
  return createPublicKey({ key: der, format: 'der', type: 'spki' });
}

/** Imports a raw 32-byte private key (an Ed25519 seed or an X25519 scalar). */
export function privateKeyFromRaw(type: CurveKeyType, raw: Uint8Array): KeyObject {
  const der = withHeader(pkcs8Header(type), raw, `${type} private key`);
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}

/** The raw 32 bytes of a public key (or of the public half of a private key). */
export function rawPublicKey(key: KeyObject): Uint8Array {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(der.length - RAW_KEY_LENGTH));
}
