/**
 * Raw 32-byte Curve25519 keys <-> node:crypto KeyObjects.
 *
 * node:crypto has no "raw" import format for Ed25519/X25519. Public keys come in as an OKP JWK
 * (RFC 8037 §2: the raw bytes, base64url, as `x`): Node hands those bytes to OpenSSL as they are,
 * ~5 µs, where OpenSSL 3's DER decoder takes ~75 µs, more than the Ed25519 verification itself,
 * and a rendezvous server imports a key for every signature it checks. Private keys (rare) are
 * wrapped in the fixed DER header of a PKCS#8 PrivateKeyInfo (RFC 5208 §5); exports read the
 * SubjectPublicKeyInfo (RFC 5280 §4.1). For these two curves the headers never vary: only the
 * OID differs.
 * @see RFC 8410 §3 (id-X25519 = 1.3.101.110, id-Ed25519 = 1.3.101.112), §4, §7
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';

export type CurveKeyType = 'ed25519' | 'x25519';

/** Length of every raw Ed25519 / X25519 key, public or private. @see RFC 8032 §5.1.5, RFC 7748 §5 */
export const RAW_KEY_LENGTH = 32;

const OID_LAST_BYTE: Record<CurveKeyType, number> = { x25519: 0x6e, ed25519: 0x70 };

/** JWK `crv` names. @see RFC 8037 §2 */
const JWK_CURVE: Record<CurveKeyType, string> = { x25519: 'X25519', ed25519: 'Ed25519' };

function pkcs8Header(type: CurveKeyType): Uint8Array {
  // SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.x }, OCTET STRING { OCTET STRING <32 bytes> } }
  // prettier-ignore
  return Uint8Array.of(
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, OID_LAST_BYTE[type], 0x04, 0x22, 0x04, 0x20,
  );
}

function checkLength(raw: Uint8Array, what: string): void {
  if (raw.length !== RAW_KEY_LENGTH) {
    throw new RangeError(`${what}: raw key length ${raw.length}, expected ${RAW_KEY_LENGTH}`);
  }
}

/** Imports a raw 32-byte public key. Throws RangeError on a wrong length. */
export function publicKeyFromRaw(type: CurveKeyType, raw: Uint8Array): KeyObject {
  checkLength(raw, `${type} public key`);
  const x = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64url');
  return createPublicKey({ key: { kty: 'OKP', crv: JWK_CURVE[type], x }, format: 'jwk' });
}

/** Imports a raw 32-byte private key (an Ed25519 seed or an X25519 scalar). */
export function privateKeyFromRaw(type: CurveKeyType, raw: Uint8Array): KeyObject {
  checkLength(raw, `${type} private key`);
  const der = Buffer.concat([pkcs8Header(type), raw]);
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}

/** The raw 32 bytes of a public key (or of the public half of a private key). */
export function rawPublicKey(key: KeyObject): Uint8Array {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(der.length - RAW_KEY_LENGTH));
}
