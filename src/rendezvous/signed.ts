/**
 * Signed objects: `{ body: base64(UTF-8 JSON bytes), sig: base64(Ed25519(DOMAIN || body bytes)) }`.
 *
 * The signature covers the exact bytes that travel, so no one re-canonicalises JSON (the classic
 * way for signer and verifier to disagree about what was signed). The DOMAIN prefix names the
 * kind of object, so a signature made for one purpose (say a registration) can never be passed
 * off as another (an intent). @see RFC 8032 §5.1.6 (Ed25519 signs arbitrary messages)
 */
import { createHash } from 'node:crypto';
import { type Identity, publicKeyFromPeerId, verify } from '../identity/index.js';
import { RendezvousVerifyError } from './errors.js';
import type { Signed } from './messages.js';

/** Signature domains, one per kind of signed object. ASCII, newline-terminated. */
export const DOMAIN = Object.freeze({
  register: 'natpunch/1 register\n',
  intent: 'natpunch/1 intent\n',
  accept: 'natpunch/1 accept\n',
  update: 'natpunch/1 update\n',
  /** Candidates trickled for one session after the intent/accept (RFC 8838). */
  trickle: 'natpunch/1 trickle\n',
} as const);

export type SignatureDomain = (typeof DOMAIN)[keyof typeof DOMAIN];

const encoder = new TextEncoder();
const utf8 = new TextDecoder('utf-8', { fatal: true });

function signedBytes(domain: string, body: Uint8Array): Uint8Array {
  const prefix = encoder.encode(domain);
  const out = new Uint8Array(prefix.length + body.length);
  out.set(prefix);
  out.set(body, prefix.length);
  return out;
}

/** Serialises `value` as JSON and signs DOMAIN || those bytes with `identity`. */
export function signObject(identity: Identity, domain: SignatureDomain, value: unknown): Signed {
  const body = encoder.encode(JSON.stringify(value));
  const sig = identity.sign(signedBytes(domain, body));
  return { body: Buffer.from(body).toString('base64'), sig: Buffer.from(sig).toString('base64') };
}

/**
 * The JSON inside a signed object, NOT verified: only for learning which key to verify with
 * (the `peerId` of a registration, the `from` of an intent). Verify with `openSigned` before
 * acting on anything else in it.
 * @throws RendezvousVerifyError ('invalid') when the body is not UTF-8 JSON
 */
export function peekSigned(signed: Signed): unknown {
  return parseBody(Buffer.from(signed.body, 'base64'));
}

/**
 * Verifies `signed` as an object of kind `domain` made by the holder of `expectedPeerId`'s key,
 * and only then parses its body. The caller still validates the body's fields.
 * @throws RendezvousVerifyError: 'wrong-peer' (not a peer id), 'bad-signature', 'invalid' (body not JSON)
 */
export function openSigned(signed: Signed, domain: SignatureDomain, expectedPeerId: string): unknown {
  let publicKey: Uint8Array;
  try {
    publicKey = publicKeyFromPeerId(expectedPeerId);
  } catch (error) {
    throw new RendezvousVerifyError('wrong-peer', `signed ${kindOf(domain)}: ${(error as Error).message}`, { cause: error });
  }
  const body = Buffer.from(signed.body, 'base64');
  const sig = Buffer.from(signed.sig, 'base64');
  if (!verify(publicKey, signedBytes(domain, body), sig)) {
    throw new RendezvousVerifyError(
      'bad-signature', `signed ${kindOf(domain)}: the signature does not verify with the key of ${expectedPeerId}`);
  }
  return parseBody(body);
}

/** base64 SHA-256 of a signed object's body bytes: how an accept names the intent it answers. */
export function bodyHash(signed: Signed): string {
  return createHash('sha256').update(Buffer.from(signed.body, 'base64')).digest('base64');
}

function parseBody(body: Uint8Array): unknown {
  try {
    return JSON.parse(utf8.decode(body));
  } catch (error) {
    throw new RendezvousVerifyError('invalid', `signed body: not UTF-8 JSON (${(error as Error).message})`);
  }
}

function kindOf(domain: string): string {
  return domain.slice(domain.indexOf(' ') + 1).trim();
}
