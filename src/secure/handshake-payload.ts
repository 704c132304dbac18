/**
 * The natpunch handshake payload: how a Noise static key is bound to a peer id.
 *
 * Noise authenticates X25519 static keys; natpunch peers are named by Ed25519 keys. Each side
 * therefore sends, inside its encrypted handshake payload, its Ed25519 public key and an
 * Ed25519 signature over the Noise static public key it uses in this handshake. The receiver
 * checks the signature against the static key the Noise layer has just authenticated, so
 * "holds the Ed25519 key" and "holds the DH key" become the same statement. The same idea as
 * libp2p's Noise handshake (there: a protobuf with identity_key and identity_sig); natpunch
 * uses a fixed binary layout because it has exactly one key type.
 *
 * Layout (96 bytes):  Ed25519 public key (32) | Ed25519 signature (64)
 * Signed message:     "natpunch/1 noise static key:" | X25519 static public key (32)
 *
 * The fixed prefix separates these signatures from every other thing an identity signs (for
 * example the rendezvous registration), so none can be replayed as another.
 * @see docs/decisions/002-noise-handshake.md
 */
import { SIGNATURE_LENGTH, verify, type Identity } from '../identity/identity.js';
import { normalizePeerId, peerIdFromPublicKey } from '../identity/peer-id.js';
import { RAW_KEY_LENGTH } from '../identity/raw-key.js';
import { NoiseError } from './errors.js';

const SIGNATURE_CONTEXT = new TextEncoder().encode('natpunch/1 noise static key:');
export const HANDSHAKE_PAYLOAD_LENGTH = RAW_KEY_LENGTH + SIGNATURE_LENGTH;

export interface HandshakePayload {
  /** Raw Ed25519 public key of the sender. */
  readonly identityKey: Uint8Array;
  /** Ed25519 signature over SIGNATURE_CONTEXT | static key. */
  readonly signature: Uint8Array;
}

function signedMessage(staticKey: Uint8Array): Uint8Array {
  const message = new Uint8Array(SIGNATURE_CONTEXT.length + staticKey.length);
  message.set(SIGNATURE_CONTEXT);
  message.set(staticKey, SIGNATURE_CONTEXT.length);
  return message;
}

/** The payload `identity` sends when its Noise static public key is `staticKey`. */
export function createHandshakePayload(identity: Identity, staticKey: Uint8Array): HandshakePayload {
  return { identityKey: identity.publicKey, signature: identity.sign(signedMessage(staticKey)) };
}

export function encodeHandshakePayload(payload: HandshakePayload): Uint8Array {
  const bytes = new Uint8Array(HANDSHAKE_PAYLOAD_LENGTH);
  bytes.set(payload.identityKey);
  bytes.set(payload.signature, RAW_KEY_LENGTH);
  return bytes;
}

export function decodeHandshakePayload(bytes: Uint8Array): HandshakePayload {
  if (bytes.length !== HANDSHAKE_PAYLOAD_LENGTH) {
    throw new NoiseError(
      'bad-payload',
      `natpunch handshake payload: length ${bytes.length}, expected ${HANDSHAKE_PAYLOAD_LENGTH} (Ed25519 key + signature)`,
    );
  }
  return { identityKey: bytes.slice(0, RAW_KEY_LENGTH), signature: bytes.slice(RAW_KEY_LENGTH) };
}

/**
 * Checks a received payload against the remote static key Noise authenticated and, when
 * given, the peer id we meant to reach. Returns the remote peer id; throws NoiseError
 * 'peer-mismatch' or 'bad-signature'.
 */
export function verifyHandshakePayload(
  payload: HandshakePayload,
  remoteStaticKey: Uint8Array,
  expectedPeerId?: string,
): string {
  const remotePeerId = peerIdFromPublicKey(payload.identityKey);
  if (expectedPeerId !== undefined && remotePeerId !== normalizePeerId(expectedPeerId)) {
    throw new NoiseError(
      'peer-mismatch',
      `natpunch handshake: expected peer ${expectedPeerId}, the remote proved to be ${remotePeerId}`,
    );
  }
  if (!verify(payload.identityKey, signedMessage(remoteStaticKey), payload.signature)) {
    throw new NoiseError(
      'bad-signature',
      `natpunch handshake: the signature of ${remotePeerId} does not cover the Noise static key it used (a relay substituting keys?)`,
    );
  }
  return remotePeerId;
}
