/**
 * HandshakeState: a generic interpreter of handshake patterns.
 * @see Noise rev 34 §5.3
 */
import type { CipherState } from './cipher-state.js';
import { TAG_LENGTH } from './cipher-chachapoly.js';
import { dh, DHLEN, generateKeyPair, type KeyPair } from './dh-25519.js';
import { NoiseError } from './errors.js';
import { parseProtocolName, type HandshakePattern, type PreMessageToken, type Token } from './handshake-pattern.js';
import { SymmetricState } from './symmetric-state.js';

/** Every Noise message, handshake or transport, fits in 65535 bytes. @see Noise rev 34 §3 */
export const MAX_MESSAGE_LENGTH = 65535;
const PSK_LENGTH = 32;
const EMPTY = new Uint8Array(0);

export interface HandshakeStateOptions {
  /** e.g. "Noise_XX_25519_ChaChaPoly_SHA256". */
  protocolName: string;
  initiator: boolean;
  prologue?: Uint8Array;
  /** Local static key pair, if the pattern sends or pre-shares one. */
  s?: KeyPair;
  /** Local ephemeral key pair; leave unset (a fresh one is generated) except for test vectors. */
  e?: KeyPair;
  /** Remote static public key known in advance (pre-message). */
  rs?: Uint8Array;
  /** Remote ephemeral public key known in advance (pre-message; no standard pattern uses it). */
  re?: Uint8Array;
  /** Pre-shared symmetric keys, in the order the pattern's psk tokens use them. */
  psks?: Uint8Array[];
}

/** What a completed handshake hands to the transport phase. */
export interface TransportKeys {
  /** Encrypts what this side sends. */
  readonly send: CipherState;
  /** Decrypts what this side receives. */
  readonly receive: CipherState;
}

export class HandshakeState {
  readonly initiator: boolean;
  readonly pattern: HandshakePattern;
  readonly #symmetric: SymmetricState;
  readonly #psks: Uint8Array[];
  #s: KeyPair | undefined;
  #e: KeyPair | undefined;
  #rs: Uint8Array | undefined;
  #re: Uint8Array | undefined;
  #messageIndex = 0;
  #pskIndex = 0;
  #failure: NoiseError | undefined;

  /** Initialize(handshake_pattern, initiator, prologue, s, e, rs, re). */
  constructor(options: HandshakeStateOptions) {
    const { pattern } = parseProtocolName(options.protocolName);
    this.pattern = pattern;
    this.initiator = options.initiator;
    this.#s = options.s;
    this.#e = options.e;
    // Copies throughout: callers may pass Buffers, whose slice() is a view into shared memory.
    this.#rs = options.rs && new Uint8Array(options.rs);
    this.#re = options.re && new Uint8Array(options.re);
    this.#psks = (options.psks ?? []).map((psk) => new Uint8Array(psk));
    this.#checkKeys();
    this.#symmetric = new SymmetricState(options.protocolName);
    this.#symmetric.mixHash(options.prologue ?? EMPTY);
    // Pre-message public keys are hashed initiator's first, then responder's.
    for (const token of pattern.initiatorPreMessage) this.#mixPreMessageKey(this.initiator ? 'local' : 'remote', token);
    for (const token of pattern.responderPreMessage) this.#mixPreMessageKey(this.initiator ? 'remote' : 'local', token);
  }

  /** True once every handshake message has been written or read. */
  get isComplete(): boolean {
    return this.#messageIndex >= this.pattern.messages.length;
  }

  /** Index (from 0) of the next handshake message to write or read. */
  get messageIndex(): number {
    return this.#messageIndex;
  }

  /** True when the next handshake message is ours to write. */
  get isMyTurn(): boolean {
    return !this.isComplete && (this.#messageIndex % 2 === 0) === this.initiator;
  }

  /** The remote static public key, once known (pre-message or received). */
  get remoteStaticKey(): Uint8Array | undefined {
    return this.#rs?.slice();
  }

  get localStaticKey(): Uint8Array | undefined {
    return this.#s?.publicKey.slice();
  }

  /** h: equal on both sides after a successful handshake. */
  get handshakeHash(): Uint8Array {
    return this.#symmetric.handshakeHash;
  }

  /** WriteMessage(payload, message_buffer): the next handshake message carrying `payload`. */
  writeMessage(payload: Uint8Array = EMPTY): Uint8Array {
    this.#checkTurn(true);
    return this.#guard(() => {
      const parts: Uint8Array[] = [];
      for (const token of this.#currentTokens()) {
        if (token === 'e') {
          this.#e ??= generateKeyPair();
          parts.push(this.#e.publicKey);
          this.#mixEphemeral(this.#e.publicKey);
        } else if (token === 's') {
          parts.push(this.#symmetric.encryptAndHash((this.#s as KeyPair).publicKey));
        } else {
          this.#mixToken(token);
        }
      }
      parts.push(this.#symmetric.encryptAndHash(payload));
      const message = concat(parts);
      if (message.length > MAX_MESSAGE_LENGTH) {
        throw new NoiseError(
          'message-too-large',
          `${this.#where()}: message length ${message.length}, limit ${MAX_MESSAGE_LENGTH}`,
        );
      }
      this.#messageIndex++;
      return message;
    });
  }

  /** ReadMessage(message, payload_buffer): processes the peer's message and returns its payload. */
  readMessage(received: Uint8Array): Uint8Array {
    this.#checkTurn(false);
    const message = new Uint8Array(received);
    if (message.length > MAX_MESSAGE_LENGTH) {
      throw this.#fail(
        new NoiseError(
          'message-too-large',
          `${this.#where()}: message length ${message.length}, limit ${MAX_MESSAGE_LENGTH}`,
        ),
      );
    }
    return this.#guard(() => {
      let offset = 0;
      const take = (length: number, what: string): Uint8Array => {
        if (offset + length > message.length) {
          throw new NoiseError(
            'malformed-message',
            `${this.#where()}: message length ${message.length} too short for ${what} (${length} bytes at offset ${offset})`,
          );
        }
        const bytes = message.subarray(offset, offset + length);
        offset += length;
        return bytes;
      };
      for (const token of this.#currentTokens()) {
        if (token === 'e') {
          this.#re = take(DHLEN, 'the ephemeral key').slice();
          this.#mixEphemeral(this.#re);
        } else if (token === 's') {
          const length = this.#symmetric.hasKey() ? DHLEN + TAG_LENGTH : DHLEN;
          this.#rs = this.#symmetric.decryptAndHash(take(length, 'the static key')).slice();
        } else {
          this.#mixToken(token);
        }
      }
      const payload = this.#symmetric.decryptAndHash(message.subarray(offset));
      this.#messageIndex++;
      return payload.slice();
    });
  }

  /**
   * Split() into this side's sending and receiving CipherStates. The spec's Split() gives
   * (initiator->responder, responder->initiator); here they are oriented for this side. A
   * non-empty `label` derives an independent pair instead (see SymmetricState.split).
   */
  split(label?: Uint8Array): TransportKeys {
    if (!this.isComplete || this.#failure) {
      throw new NoiseError('invalid-state', `${this.#where()}: split before the handshake completed`);
    }
    const [initiatorToResponder, responderToInitiator] = this.#symmetric.split(label);
    return this.initiator
      ? { send: initiatorToResponder, receive: responderToInitiator }
      : { send: responderToInitiator, receive: initiatorToResponder };
  }

  #currentTokens(): readonly Token[] {
    return this.pattern.messages[this.#messageIndex] as readonly Token[];
  }

  /** In psk handshakes an ephemeral key is also mixed into the key. @see §9.2 */
  #mixEphemeral(publicKey: Uint8Array): void {
    this.#symmetric.mixHash(publicKey);
    if (this.pattern.psk) this.#symmetric.mixKey(publicKey);
  }

  #mixToken(token: Exclude<Token, 'e' | 's'>): void {
    if (token === 'psk') {
      this.#symmetric.mixKeyAndHash(this.#psks[this.#pskIndex++] as Uint8Array);
      return;
    }
    // A DH token names the initiator's key first and the responder's second: "es" is DH
    // between the initiator's ephemeral and the responder's static key, seen from either side.
    const [initiatorKey, responderKey] = token as `${'e' | 's'}${'e' | 's'}`;
    const [local, remote] = this.initiator ? [initiatorKey, responderKey] : [responderKey, initiatorKey];
    const keyPair = local === 'e' ? this.#e : this.#s;
    const publicKey = remote === 'e' ? this.#re : this.#rs;
    this.#symmetric.mixKey(dh(this.#need(keyPair, local), this.#need(publicKey, `r${remote}`)));
  }

  #need<T>(value: T | undefined, name: string): T {
    // Unreachable for the built-in patterns (every DH follows the tokens that set its keys);
    // kept as a clear failure rather than a TypeError deep in node:crypto.
    if (value === undefined) throw new NoiseError('invalid-state', `${this.#where()}: key ${name} is not known yet`);
    return value;
  }

  #mixPreMessageKey(side: 'local' | 'remote', token: PreMessageToken): void {
    const local = token === 's' ? this.#s?.publicKey : this.#e?.publicKey;
    const remote = token === 's' ? this.#rs : this.#re;
    this.#symmetric.mixHash((side === 'local' ? local : remote) as Uint8Array);
  }

  /** Checks up front that every key the pattern needs from the caller was given. */
  #checkKeys(): void {
    const { pattern, initiator } = this;
    const missing: string[] = [];
    const [localPre, remotePre] = initiator
      ? [pattern.initiatorPreMessage, pattern.responderPreMessage]
      : [pattern.responderPreMessage, pattern.initiatorPreMessage];
    if (localPre.includes('s') && !this.#s) missing.push('s (local static key, pre-message)');
    if (localPre.includes('e') && !this.#e) missing.push('e (local ephemeral key, pre-message)');
    if (remotePre.includes('s') && !this.#rs) missing.push('rs (remote static key, pre-message)');
    if (remotePre.includes('e') && !this.#re) missing.push('re (remote ephemeral key, pre-message)');
    const sendsStatic = pattern.messages.some(
      (tokens, index) => (index % 2 === 0) === initiator && tokens.includes('s'),
    );
    if (sendsStatic && !this.#s) missing.push('s (local static key, sent in a message)');
    if (missing.length > 0) {
      throw new NoiseError(
        'invalid-state',
        `Noise_${pattern.name}: as ${initiator ? 'initiator' : 'responder'} it needs ${missing.join(', ')}`,
      );
    }
    const pskCount = pattern.messages.flat().filter((token) => token === 'psk').length;
    if (this.#psks.length !== pskCount || this.#psks.some((psk) => psk.length !== PSK_LENGTH)) {
      throw new NoiseError(
        'invalid-state',
        `Noise_${pattern.name}: needs ${pskCount} psks of ${PSK_LENGTH} bytes, got ${this.#psks.length}`,
      );
    }
  }

  #checkTurn(writing: boolean): void {
    if (this.#failure) {
      throw new NoiseError(
        'invalid-state',
        `${this.#where()}: the handshake already failed (${this.#failure.reason})`,
        {
          cause: this.#failure,
        },
      );
    }
    if (this.isComplete) throw new NoiseError('invalid-state', `${this.#where()}: the handshake is already complete`);
    if (this.isMyTurn !== writing) {
      throw new NoiseError(
        'invalid-state',
        `${this.#where()}: it is the ${writing ? 'peer' : 'local side'}'s turn to write`,
      );
    }
  }

  /** Any failure mid-message leaves h and ck half-updated: the state is dead from then on. */
  #guard<T>(step: () => T): T {
    try {
      return step();
    } catch (error) {
      throw this.#fail(
        error instanceof NoiseError
          ? error
          : new NoiseError('invalid-state', `${this.#where()}: ${String(error)}`, { cause: error }),
      );
    }
  }

  #fail(error: NoiseError): NoiseError {
    this.#failure = error;
    return error;
  }

  #where(): string {
    return `Noise_${this.pattern.name} ${this.initiator ? 'initiator' : 'responder'} message ${this.#messageIndex + 1}`;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
