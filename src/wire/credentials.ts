/**
 * Keys for the short-term and long-term credential mechanisms, and USERHASH.
 *
 * String preparation: RFC 8489 asks for the PRECIS OpaqueString profile (RFC 8265 §4.2). We
 * apply its mapping rules (non-ASCII spaces become U+0020, then Unicode NFC) but do not reject
 * the code points PRECIS disallows: both ends derive the key the same way, so a string PRECIS
 * would refuse only makes authentication fail, never succeed wrongly. `saslPrep` gives the
 * RFC 5389 preparation (NFKC) for peers that still use it, as RFC 5769 §2.4's vector does.
 * @see RFC 8489 §9.1.1, §9.2.2, §14.4; RFC 8265 §4.2; RFC 4013
 */

import { createHash } from 'node:crypto';
import { UsageError } from '../errors.js';

const encoder = new TextEncoder();

// Unicode general category Zs other than U+0020 (RFC 8265 §4.2.1 additional mapping rule).
const NON_ASCII_SPACE = /[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]/g;

// RFC 3454 table B.1, "commonly mapped to nothing", used by SASLprep (RFC 4013 §2.2).
const MAPPED_TO_NOTHING = /[\u00ad\u034f\u1806\u180b-\u180d\u200b-\u200d\u2060\ufe00-\ufe0f\ufeff]/g;

/** OpaqueString preparation, mapping rules only (see the module comment). @see RFC 8265 §4.2 */
export function opaqueString(s: string): string {
  return s.replace(NON_ASCII_SPACE, ' ').normalize('NFC');
}

/**
 * SASLprep mapping and normalisation (RFC 4013 §2.1-2.2: table B.1 to nothing, non-ASCII spaces
 * to U+0020, NFKC), without its prohibited-output and bidi checks. For RFC 5389 peers.
 */
export function saslPrep(s: string): string {
  return s.replace(MAPPED_TO_NOTHING, '').replace(NON_ASCII_SPACE, ' ').normalize('NFKC');
}

/** Short-term credential key: the OpaqueString-prepared password as UTF-8. @see RFC 8489 §9.1.1 */
export function shortTermKey(password: string): Uint8Array {
  return encoder.encode(opaqueString(password));
}

/**
 * Long-term credential key: MD5(username ":" realm ":" password), or SHA-256 of the same when
 * PASSWORD-ALGORITHM selects it, each part OpaqueString-prepared. @see RFC 8489 §9.2.2, §18.5
 */
export function longTermKey(username: string, realm: string, password: string, algorithm: 'md5' | 'sha256' = 'md5'): Uint8Array {
  if (algorithm !== 'md5' && algorithm !== 'sha256') {
    throw new UsageError(`long-term key: algorithm "${String(algorithm)}", expected "md5" or "sha256"`);
  }
  const text = `${opaqueString(username)}:${opaqueString(realm)}:${opaqueString(password)}`;
  return new Uint8Array(createHash(algorithm).update(text, 'utf8').digest());
}

/** USERHASH value: SHA-256(username ":" realm), both OpaqueString-prepared. @see RFC 8489 §14.4 */
export function userhash(username: string, realm: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`${opaqueString(username)}:${opaqueString(realm)}`, 'utf8').digest());
}
