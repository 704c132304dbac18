/**
 * The long-term credential mechanism as a TURN server runs it: a 401 challenge with REALM and
 * NONCE, then every request carries USERNAME, REALM, NONCE and MESSAGE-INTEGRITY made with
 * MD5(username:realm:password). Passwords come from a static user table (`--turn-user`) or are
 * derived from a shared secret (`--turn-secret`, src/turn/rest-credentials.ts).
 * @see RFC 8489 §9.2.4 (receiving a request), RFC 8656 §5
 */

import {
  type Attribute, type StunMessage, AttrType, StunErrorCode, getAttribute, longTermKey, nonce as nonceCodec,
  realm as realmCodec, username as usernameCodec, verifyIntegrity, type IntegrityAlgorithm,
} from '../wire/index.js';
import { NonceIssuer } from './nonce.js';
import { restExpiry, restPassword } from './rest-credentials.js';

export interface AuthOptions {
  realm: string;
  /** Static users: name → password. */
  users?: ReadonlyMap<string, string>;
  /** Shared secret of the REST scheme: usernames `EXPIRY:USER` with passwords HMAC(secret, username). */
  secret?: string;
  /** Unix ms, for expiry checks (REST usernames, nonces). */
  now?: () => number;
}

export type AuthResult =
  | { ok: true; username: string; key: Uint8Array; algorithm: IntegrityAlgorithm }
  /** The error to answer with: its code, reason and the attributes besides ERROR-CODE (REALM, NONCE). */
  | { ok: false; code: number; reason: string; attributes: Attribute[] };

export class LongTermAuth {
  readonly realm: string;
  readonly #users: ReadonlyMap<string, string>;
  readonly #secret: string | undefined;
  readonly #now: () => number;
  readonly #nonces: NonceIssuer;
  /** Derived keys, so an MD5 is not computed per request; bounded since usernames are attacker-chosen. */
  readonly #keys = new Map<string, Uint8Array>();

  constructor(options: AuthOptions) {
    this.realm = options.realm;
    this.#users = options.users ?? new Map();
    this.#secret = options.secret;
    this.#now = options.now ?? Date.now;
    this.#nonces = new NonceIssuer({ now: this.#now });
  }

  /** Whether any credential source is configured (a server without one refuses every request). */
  get configured(): boolean {
    return this.#users.size > 0 || this.#secret !== undefined;
  }

  /**
   * Authenticates a request from `ip`. The order of the checks is RFC 8489 §9.2.4's: no
   * MESSAGE-INTEGRITY → 401 with a challenge; missing USERNAME/REALM/NONCE → 400; bad nonce →
   * 438 with a fresh one; unknown user or wrong integrity → 401.
   */
  authenticate(request: StunMessage, ip: string): AuthResult {
    const hasIntegrity = getAttribute(request, AttrType.MessageIntegrity) !== undefined || getAttribute(request, AttrType.MessageIntegritySha256) !== undefined;
    if (!hasIntegrity) return this.#challenge(ip, StunErrorCode.Unauthenticated, 'Unauthenticated');
    let username: string;
    let nonce: string;
    try {
      const u = getAttribute(request, AttrType.Username);
      const r = getAttribute(request, AttrType.Realm);
      const n = getAttribute(request, AttrType.Nonce);
      if (!u || !r || !n) return { ok: false, code: StunErrorCode.BadRequest, reason: 'Bad Request: USERNAME, REALM and NONCE are required with MESSAGE-INTEGRITY', attributes: [] };
      username = usernameCodec.decode(u);
      realmCodec.decode(r);
      nonce = nonceCodec.decode(n);
    } catch (error) {
      return { ok: false, code: StunErrorCode.BadRequest, reason: `Bad Request: ${(error as Error).message}`, attributes: [] };
    }
    if (this.#nonces.check(nonce, ip) !== 'valid') return this.#challenge(ip, StunErrorCode.StaleNonce, 'Stale Nonce');
    const key = this.#key(username);
    // An unknown user gets the same answer as a wrong password: no username oracle.
    const algorithm = key ? verifyIntegrity(request, key) : false;
    if (!key || !algorithm) return this.#challenge(ip, StunErrorCode.Unauthenticated, 'Unauthenticated');
    return { ok: true, username, key, algorithm };
  }

  #challenge(ip: string, code: number, reason: string): AuthResult {
    return {
      ok: false, code, reason, attributes: [
        { type: AttrType.Realm, value: realmCodec.encode(this.realm) },
        { type: AttrType.Nonce, value: nonceCodec.encode(this.#nonces.issue(ip)) },
      ],
    };
  }

  #key(username: string): Uint8Array | undefined {
    const password = this.#password(username);
    if (password === undefined) return undefined;
    const id = `${username}\0${password}`;
    let key = this.#keys.get(id);
    if (!key) {
      key = longTermKey(username, this.realm, password);
      if (this.#keys.size >= 4096) this.#keys.clear();
      this.#keys.set(id, key);
    }
    return key;
  }

  #password(username: string): string | undefined {
    const fixed = this.#users.get(username);
    if (fixed !== undefined) return fixed;
    if (this.#secret === undefined) return undefined;
    const expiry = restExpiry(username);
    if (expiry === undefined || expiry * 1000 <= this.#now()) return undefined;
    return restPassword(this.#secret, username);
  }
}
