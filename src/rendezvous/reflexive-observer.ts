/**
 * Proof of a peer's server-reflexive address. The rendezvous server hands each connection a
 * random token in `hello`; the peer sends a STUN Binding request carrying USERNAME = token from
 * its one UDP socket to the server's STUN port; this observer, hooked into the StunServer's
 * `onBinding`, records the request's source address under the token. When the peer registers
 * claiming a server-reflexive address, the server compares the claim with what it saw.
 *
 * Only tokens the server issued (`expect`) are recorded, so a flood of Binding requests with
 * made-up tokens cannot push real entries out. Everything is bounded and expires.
 * @see RFC 8489 §14.3 (USERNAME), RFC 8445 §5.1.1.2 (server-reflexive candidates)
 */
import { type StunMessage, type TransportAddress, AttrType, getAttribute, username } from '../wire/index.js';

export type StunTransport = 'udp' | 'tcp';

export interface ReflexiveObserverOptions {
  /** How long a token stays expected and an observation stays valid (default 30 s). */
  ttlMs?: number;
  /** Most tokens expected at once (default 65536); the oldest is dropped beyond it. */
  maxTokens?: number;
  now?: () => number;
}

interface Entry {
  expires: number;
  udp?: TransportAddress;
  tcp?: TransportAddress;
  waiters: Set<() => void>;
}

const TOKEN = /^[A-Za-z0-9_-]{22}$/;

export class ReflexiveObserver {
  readonly #ttlMs: number;
  readonly #maxTokens: number;
  readonly #now: () => number;
  /** Insertion order is expiry order (every entry lives ttlMs), so the front expires first. */
  readonly #entries = new Map<string, Entry>();

  constructor(options: ReflexiveObserverOptions = {}) {
    this.#ttlMs = options.ttlMs ?? 30_000;
    this.#maxTokens = options.maxTokens ?? 65_536;
    this.#now = options.now ?? Date.now;
  }

  /** Pass as StunServerOptions.onBinding. */
  readonly onBinding = (request: StunMessage, from: TransportAddress, transport: StunTransport): void => {
    const value = getAttribute(request, AttrType.Username);
    if (!value) return;
    let token: string;
    try {
      token = username.decode(value);
    } catch {
      return;
    }
    const entry = TOKEN.test(token) ? this.#live(token) : undefined;
    if (!entry) return;
    entry[transport] = { ...from };
    for (const wake of entry.waiters) wake();
    entry.waiters.clear();
  };

  /** Start accepting observations for `token` (for ttlMs). */
  expect(token: string): void {
    this.#sweep();
    this.forget(token);
    while (this.#entries.size >= this.#maxTokens) this.forget(this.#entries.keys().next().value!);
    this.#entries.set(token, { expires: this.#now() + this.#ttlMs, waiters: new Set() });
  }

  /** Stop tracking `token`; anyone waiting on it gets `undefined`. */
  forget(token: string): void {
    const entry = this.#entries.get(token);
    if (!entry) return;
    this.#entries.delete(token);
    for (const wake of entry.waiters) wake();
  }

  /** The source address a Binding with `token` came from over `transport`, if seen and not expired. */
  observed(token: string, transport: StunTransport = 'udp'): TransportAddress | undefined {
    return this.#live(token)?.[transport];
  }

  /**
   * Resolves with the observation for `token` as soon as there is one, or with `undefined` after
   * `timeoutMs` (the STUN packet may be lost or still in flight when the registration arrives).
   */
  wait(token: string, transport: StunTransport, timeoutMs: number): Promise<TransportAddress | undefined> {
    const seen = this.observed(token, transport);
    const entry = this.#live(token);
    if (seen || !entry || timeoutMs <= 0) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        entry.waiters.delete(wake);
        resolve(this.observed(token, transport));
      };
      const timer = setTimeout(wake, timeoutMs);
      entry.waiters.add(wake);
    });
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Forget everything; pending waits resolve with `undefined`. */
  clear(): void {
    for (const token of [...this.#entries.keys()]) this.forget(token);
  }

  #live(token: string): Entry | undefined {
    const entry = this.#entries.get(token);
    if (entry && entry.expires <= this.#now()) {
      this.forget(token);
      return undefined;
    }
    return entry;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [token, entry] of this.#entries) {
      if (entry.expires > now) break;
      this.forget(token);
    }
  }
}
