/**
 * Handshake patterns, written in the spec's own notation and parsed into token lists, plus
 * the pattern modifiers (pskN) and protocol-name parsing.
 * @see Noise rev 34 §7 (patterns), §9 (psk modifiers), §8 (protocol names)
 */
import { NoiseError } from './errors.js';

export type Token = 'e' | 's' | 'ee' | 'es' | 'se' | 'ss' | 'psk';
export type PreMessageToken = 'e' | 's';

export interface HandshakePattern {
  /** e.g. "XXpsk3". */
  readonly name: string;
  readonly initiatorPreMessage: readonly PreMessageToken[];
  readonly responderPreMessage: readonly PreMessageToken[];
  /** Messages alternate, starting with the initiator ("->"). */
  readonly messages: readonly (readonly Token[])[];
  /** One-way patterns (§7.4) send a single message and only initiator->responder traffic after. */
  readonly oneWay: boolean;
  /** True when any psk token is present: "e" tokens then also MixKey. @see §9.2 */
  readonly psk: boolean;
}

/** One-way patterns. @see Noise rev 34 §7.4 */
const ONE_WAY = {
  N: '<- s ... -> e, es',
  K: '-> s <- s ... -> e, es, ss',
  X: '<- s ... -> e, es, s, ss',
};

/** Fundamental interactive patterns. @see Noise rev 34 §7.5 */
const INTERACTIVE = {
  NN: '-> e <- e, ee',
  NK: '<- s ... -> e, es <- e, ee',
  NX: '-> e <- e, ee, s, es',
  XN: '-> e <- e, ee -> s, se',
  XK: '<- s ... -> e, es <- e, ee -> s, se',
  XX: '-> e <- e, ee, s, es -> s, se',
  KN: '-> s ... -> e <- e, ee, se',
  KK: '-> s <- s ... -> e, es, ss <- e, ee, se',
  KX: '-> s ... -> e <- e, ee, se, s, es',
  IN: '-> e, s <- e, ee, se',
  IK: '<- s ... -> e, es, s, ss <- e, ee, se',
  IX: '-> e, s <- e, ee, se, s, es',
};

/** Deferred patterns: an authentication DH moved one message later. @see Noise rev 34 §7.6 */
const DEFERRED = {
  NK1: '<- s ... -> e <- e, ee, es',
  NX1: '-> e <- e, ee, s -> es',
  X1N: '-> e <- e, ee -> s <- se',
  X1K: '<- s ... -> e, es <- e, ee -> s <- se',
  XK1: '<- s ... -> e <- e, ee, es -> s, se',
  X1K1: '<- s ... -> e <- e, ee, es -> s <- se',
  X1X: '-> e <- e, ee, s, es -> s <- se',
  XX1: '-> e <- e, ee, s -> es, s, se',
  X1X1: '-> e <- e, ee, s -> es, s <- se',
  K1N: '-> s ... -> e <- e, ee -> se',
  K1K: '-> s <- s ... -> e, es <- e, ee -> se',
  KK1: '-> s <- s ... -> e <- e, ee, se, es',
  K1K1: '-> s <- s ... -> e <- e, ee, es -> se',
  K1X: '-> s ... -> e <- e, ee, s, es -> se',
  KX1: '-> s ... -> e <- e, ee, se, s -> es',
  K1X1: '-> s ... -> e <- e, ee, s -> se, es',
  I1N: '-> e, s <- e, ee -> se',
  I1K: '<- s ... -> e, es, s <- e, ee -> se',
  IK1: '<- s ... -> e, s <- e, ee, se, es',
  I1K1: '<- s ... -> e, s <- e, ee, es -> se',
  I1X: '-> e, s <- e, ee, s, es -> se',
  IX1: '-> e, s <- e, ee, se, s -> es',
  I1X1: '-> e, s <- e, ee, s -> se, es',
};

const NOTATION: Readonly<Record<string, string>> = { ...ONE_WAY, ...INTERACTIVE, ...DEFERRED };
const TOKENS: ReadonlySet<string> = new Set(['e', 's', 'ee', 'es', 'se', 'ss', 'psk']);

/** Names of every base pattern this module knows. */
export const BASE_PATTERNS: readonly string[] = Object.keys(NOTATION);

interface Line {
  readonly direction: '->' | '<-';
  readonly tokens: string[];
}

/** Splits "-> e, es <- e, ee" into lines: each arrow starts one. */
function parseLines(text: string): Line[] {
  const lines: Line[] = [];
  for (const piece of text.split(/(?=->|<-)/)) {
    const trimmed = piece.trim();
    if (trimmed === '') continue;
    const direction = trimmed.slice(0, 2) as Line['direction'];
    const tokens = trimmed
      .slice(2)
      .split(',')
      .map((token) => token.trim())
      .filter((token) => token !== '');
    lines.push({ direction, tokens });
  }
  return lines;
}

function parseBase(name: string, notation: string): HandshakePattern {
  const [preText, messageText] = notation.includes('...') ? notation.split('...') : ['', notation];
  const pre = parseLines(preText as string);
  const lines = parseLines(messageText as string);
  lines.forEach((line, index) => {
    const expected = index % 2 === 0 ? '->' : '<-';
    if (line.direction !== expected) throw new Error(`pattern ${name}: message ${index + 1} must be ${expected}`);
    for (const token of line.tokens) if (!TOKENS.has(token)) throw new Error(`pattern ${name}: unknown token ${token}`);
  });
  const preFor = (direction: Line['direction']): PreMessageToken[] =>
    pre.filter((line) => line.direction === direction).flatMap((line) => line.tokens as PreMessageToken[]);
  return {
    name,
    initiatorPreMessage: preFor('->'),
    responderPreMessage: preFor('<-'),
    messages: lines.map((line) => line.tokens as Token[]),
    oneWay: name in ONE_WAY,
    psk: false,
  };
}

/**
 * A pattern by name, with modifiers: "XX", "IKpsk2", "NNpsk0+psk2". psk0 puts a psk token at
 * the start of the first message, pskN (N >= 1) at the end of the N-th. @see §9.2
 */
export function handshakePattern(fullName: string): HandshakePattern {
  const match = /^([A-Z0-9]+?)((?:psk\d+)(?:\+psk\d+)*)?$/.exec(fullName);
  const notation = match ? NOTATION[match[1] as string] : undefined;
  if (!match || notation === undefined) {
    throw new NoiseError(
      'unsupported',
      `Noise pattern ${JSON.stringify(fullName)}: unknown; known are ${BASE_PATTERNS.join(', ')} with pskN modifiers`,
    );
  }
  const base = parseBase(match[1] as string, notation);
  if (!match[2]) return base;
  const messages = base.messages.map((tokens) => [...tokens]);
  for (const modifier of match[2].split('+')) {
    const position = Number(modifier.slice(3));
    if (position === 0) {
      messages[0]?.unshift('psk');
    } else if (position <= messages.length) {
      messages[position - 1]?.push('psk');
    } else {
      throw new NoiseError(
        'unsupported',
        `Noise pattern ${fullName}: ${modifier} names message ${position} of ${messages.length}`,
      );
    }
  }
  return { ...base, name: fullName, messages, psk: true };
}

export interface ProtocolName {
  readonly name: string;
  readonly pattern: HandshakePattern;
}

/** The only primitives provided: "_25519_ChaChaPoly_SHA256". */
export const SUPPORTED_SUITE = '25519_ChaChaPoly_SHA256';

/** Parses "Noise_XX_25519_ChaChaPoly_SHA256". @see Noise rev 34 §8 */
export function parseProtocolName(name: string): ProtocolName {
  const match = /^Noise_([^_]+)_(.+)$/.exec(name);
  if (!match) {
    throw new NoiseError(
      'unsupported',
      `Noise protocol name ${JSON.stringify(name)}: expected Noise_<pattern>_${SUPPORTED_SUITE}`,
    );
  }
  if (match[2] !== SUPPORTED_SUITE) {
    throw new NoiseError(
      'unsupported',
      `Noise protocol name ${name}: primitives ${match[2]}, only ${SUPPORTED_SUITE} is provided`,
    );
  }
  return { name, pattern: handshakePattern(match[1] as string) };
}
