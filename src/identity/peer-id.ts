/**
 * Peer ids: the text form of a peer's Ed25519 public key.
 *
 * Layout (35 bytes, base32 lowercase without padding = exactly 56 characters):
 *
 *   version (1 byte, 0x01) | Ed25519 public key (32 bytes) | checksum (2 bytes)
 *
 * - version: lets a later key type or layout coexist with this one; ids of version 1 all
 *   start with the letter "a".
 * - checksum: the first two bytes of SHA-256(version | key). A mistyped or truncated id is
 *   rejected with probability 1 - 2^-16 instead of naming a different, valid-looking peer.
 * - base32 (RFC 4648 §6): case-insensitive, URL- and shell-safe, no look-alike punctuation;
 *   35 bytes is a multiple of 5, so there are no wasted partial characters.
 *
 * @see docs/decisions/002-noise-handshake.md for how ids bind to the Noise handshake.
 */
import { createHash } from 'node:crypto';
import { UsageError } from '../errors.js';
import { decodeBase32, encodeBase32 } from './base32.js';
import { RAW_KEY_LENGTH } from './raw-key.js';

export const PEER_ID_VERSION = 0x01;
const CHECKSUM_LENGTH = 2;
const ENCODED_BYTES = 1 + RAW_KEY_LENGTH + CHECKSUM_LENGTH;
/** Length of a version-1 peer id in characters. */
export const PEER_ID_LENGTH = (ENCODED_BYTES * 8) / 5;

/** A string that is not a valid peer id. Code ERR_USAGE: it is the caller's input that is wrong. */
export class InvalidPeerIdError extends UsageError {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidPeerIdError';
  }
}

/** The id as error messages quote it; only built on the error path (a server parses ids for every signed message). */
function shown(text: string): string {
  return text.length > 70 ? `${JSON.stringify(text.slice(0, 60))}...` : JSON.stringify(text);
}

function checksum(versionAndKey: Uint8Array): Uint8Array {
  return createHash('sha256').update(versionAndKey).digest().subarray(0, CHECKSUM_LENGTH);
}

/** The peer id of a raw 32-byte Ed25519 public key (56 lowercase base32 characters). Throws RangeError for another length. */
export function peerIdFromPublicKey(publicKey: Uint8Array): string {
  if (publicKey.length !== RAW_KEY_LENGTH) {
    throw new RangeError(`peer id: public key length ${publicKey.length}, expected ${RAW_KEY_LENGTH}`);
  }
  const bytes = new Uint8Array(ENCODED_BYTES);
  bytes[0] = PEER_ID_VERSION;
  bytes.set(publicKey, 1);
  bytes.set(checksum(bytes.subarray(0, 1 + RAW_KEY_LENGTH)), 1 + RAW_KEY_LENGTH);
  return encodeBase32(bytes);
}

/**
 * Parses a peer id (any letter case, surrounding whitespace ignored) back to the raw 32-byte
 * Ed25519 public key. Throws InvalidPeerIdError (code ERR_USAGE) saying what is wrong.
 */
export function publicKeyFromPeerId(id: string): Uint8Array {
  const text = id.trim();
  if (text.length !== PEER_ID_LENGTH) {
    throw new InvalidPeerIdError(
      `peer id ${shown(text)}: length ${text.length}, expected ${PEER_ID_LENGTH} characters (run \`natpunch id\` on the other machine to see its id)`,
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = decodeBase32(text);
  } catch (error) {
    throw new InvalidPeerIdError(`peer id ${shown(text)}: ${(error as Error).message}`);
  }
  if (bytes[0] !== PEER_ID_VERSION) {
    throw new InvalidPeerIdError(
      `peer id ${shown(text)}: version ${bytes[0]}, expected ${PEER_ID_VERSION} (is it from a newer natpunch?)`,
    );
  }
  const versionAndKey = bytes.subarray(0, 1 + RAW_KEY_LENGTH);
  const expected = checksum(versionAndKey);
  const got = bytes.subarray(1 + RAW_KEY_LENGTH);
  if (expected[0] !== got[0] || expected[1] !== got[1]) {
    throw new InvalidPeerIdError(`peer id ${shown(text)}: checksum mismatch, the id has a typo`);
  }
  return bytes.slice(1, 1 + RAW_KEY_LENGTH);
}

/** True when `id` parses as a peer id. */
export function isPeerId(id: string): boolean {
  try {
    publicKeyFromPeerId(id);
    return true;
  } catch {
    return false;
  }
}

/** Canonical (lowercase, trimmed) form, so ids can be compared with ===. Throws like publicKeyFromPeerId. */
export function normalizePeerId(id: string): string {
  return peerIdFromPublicKey(publicKeyFromPeerId(id));
}
