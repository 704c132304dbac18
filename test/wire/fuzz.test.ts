/**
 * Fuzzing (STYLE §11): over 100,000 random and mutated messages go through `decodeMessage`
 * and everything that reads a decoded message, and random values through every attribute
 * decoder. The only error allowed out is StunDecodeError; nothing may hang or allocate past
 * the input's size.
 *
 * Deterministic: a seeded PRNG (FUZZ_SEED, default fixed) drives it; FUZZ_ITERATIONS scales
 * it for a longer scheduled run. A failing input is printed as hex: add it to
 * fixtures/fuzz-regressions.ts.
 */

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NatpunchError, StunDecodeError } from '../../src/errors.js';
import {
  AttrType,
  LEGACY_XOR_MAPPED_ADDRESS,
  MessageClass,
  Method,
  alternateServer,
  changeRequest,
  decodeMessage,
  isRfc3489BindingRequest,
  encodeMessage,
  errorCode,
  fingerprint,
  inspectFingerprint,
  inspectIntegrity,
  isStunMessage,
  mappedAddress,
  messageIntegrity,
  messageIntegritySha256,
  nonce,
  otherAddress,
  padding,
  passwordAlgorithm,
  passwordAlgorithms,
  readMessageLength,
  realm,
  reflexiveAddress,
  responseOrigin,
  responsePort,
  shortTermKey,
  software,
  unknownAttributes,
  username,
  xorMappedAddress,
  xorPeerAddress,
  xorRelayedAddress,
  type Attribute,
  type StunMessage,
} from '../../src/wire/index.js';
import { SAMPLE_IPV4_RESPONSE, SAMPLE_IPV6_RESPONSE, SAMPLE_LONG_TERM_REQUEST, SAMPLE_REQUEST } from './fixtures/rfc5769.js';
import { SAMPLE_SHA256_REQUEST } from './fixtures/rfc8489-appendix-b.js';
import { FUZZ_REGRESSIONS } from './fixtures/fuzz-regressions.js';
import { hex, toHex } from './helpers.js';
import { seededRandom } from '../transport/lossy-link.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 0x5eed5);
const MESSAGES = Number(process.env['FUZZ_ITERATIONS'] ?? 110_000);
const KEY = shortTermKey('VOkJxbRl1RmTxUk/WvJxBt');

const random = seededRandom(SEED);
const int = (n: number): number => Math.floor(random() * n);
const bytes = (n: number): Uint8Array => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = int(256);
  return out;
};
const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;

/** Every attribute codec; the XOR ones need the transaction id. */
interface Codec {
  name: string;
  decode(value: Uint8Array, tid: Uint8Array): unknown;
  encode(decoded: never, tid: Uint8Array): Uint8Array;
}
const plain = (name: string, c: { decode(v: Uint8Array): unknown; encode(d: never): Uint8Array }): Codec => ({
  name,
  decode: (v) => c.decode(v),
  encode: (d) => c.encode(d),
});
const xored = (name: string, c: { decode(v: Uint8Array, t: Uint8Array): unknown; encode(d: never, t: Uint8Array): Uint8Array }): Codec => ({
  name,
  decode: (v, t) => c.decode(v, t),
  encode: (d, t) => c.encode(d, t),
});
const CODECS: Codec[] = [
  plain('MAPPED-ADDRESS', mappedAddress),
  plain('OTHER-ADDRESS', otherAddress),
  plain('RESPONSE-ORIGIN', responseOrigin),
  plain('ALTERNATE-SERVER', alternateServer),
  xored('XOR-MAPPED-ADDRESS', xorMappedAddress),
  xored('XOR-PEER-ADDRESS', xorPeerAddress),
  xored('XOR-RELAYED-ADDRESS', xorRelayedAddress),
  plain('CHANGE-REQUEST', changeRequest),
  plain('RESPONSE-PORT', responsePort),
  plain('PADDING', padding),
  plain('ERROR-CODE', errorCode),
  plain('UNKNOWN-ATTRIBUTES', unknownAttributes),
  plain('USERNAME', username),
  plain('REALM', realm),
  plain('NONCE', nonce),
  plain('SOFTWARE', software),
  plain('FINGERPRINT', fingerprint),
  plain('MESSAGE-INTEGRITY', messageIntegrity),
  plain('MESSAGE-INTEGRITY-SHA256', messageIntegritySha256),
  plain('PASSWORD-ALGORITHM', passwordAlgorithm),
  plain('PASSWORD-ALGORITHMS', passwordAlgorithms),
];

/**
 * Decodes `value` with `codec`; when that succeeds, what it decoded must encode again
 * (whatever we accept we can send) and decode to the same thing (STYLE §11).
 */
function probe(codec: Codec, value: Uint8Array, tid: Uint8Array): string | undefined {
  let decoded: unknown;
  const bad = misbehaviour(() => {
    decoded = codec.decode(value, tid);
  });
  if (bad) return `${codec.name} decoder: ${bad}`;
  if (decoded === undefined) return undefined;
  try {
    assert.deepEqual(codec.decode(codec.encode(decoded as never, tid), tid), decoded);
  } catch (err) {
    return `${codec.name}: decode(encode(decode(value))) differs from decode(value): ${String(err)}`;
  }
  return undefined;
}

/** Valid messages to mutate: the RFC vectors and one message per attribute codec. */
function corpus(): Uint8Array[] {
  const tid = hex('b7e7a701bc34d686fa87dfae');
  const v4 = { family: 4 as const, address: '192.0.2.1', port: 32853 };
  const v6 = { family: 6 as const, address: '2001:db8::1', port: 3478 };
  const attributes: Attribute[] = [
    { type: AttrType.XorMappedAddress, value: xorMappedAddress.encode(v6, tid) },
    { type: AttrType.MappedAddress, value: mappedAddress.encode(v4) },
    { type: LEGACY_XOR_MAPPED_ADDRESS, value: xorMappedAddress.encode(v4, tid) },
    { type: AttrType.OtherAddress, value: otherAddress.encode(v6) },
    { type: AttrType.ChangeRequest, value: changeRequest.encode({ changeIp: true, changePort: true }) },
    { type: AttrType.ResponsePort, value: responsePort.encode(3479) },
    { type: AttrType.Padding, value: padding.encode(13) },
    { type: AttrType.ErrorCode, value: errorCode.encode({ code: 420, reason: 'Unknown Attribute' }) },
    { type: AttrType.UnknownAttributes, value: unknownAttributes.encode([0x0003, 0x7777, 0x0002]) },
    { type: AttrType.Username, value: username.encode('マトリックス:peer') },
    { type: AttrType.Realm, value: realm.encode('example.org') },
    { type: AttrType.Nonce, value: nonce.encode('f//499k954d6OL34oL9FSTvy64sA') },
    { type: AttrType.Software, value: software.encode('natpunch fuzz') },
    { type: AttrType.PasswordAlgorithms, value: passwordAlgorithms.encode([{ algorithm: 2 }, { algorithm: 1, parameters: hex('010203') }]) },
  ];
  const built = [
    encodeMessage({ method: Method.Binding, messageClass: MessageClass.SuccessResponse, transactionId: tid, attributes }, { integrity: { key: KEY, algorithm: 'both' }, fingerprint: true }),
    encodeMessage({ method: Method.Binding, messageClass: MessageClass.ErrorResponse, transactionId: tid, attributes: attributes.slice(7, 9) }, { integrity: { key: KEY } }),
    encodeMessage({ method: Method.Allocate, messageClass: MessageClass.Request, transactionId: tid, attributes: attributes.slice(9) }, { integrity: { key: KEY, algorithm: 'sha256' } }),
    encodeMessage({ method: Method.Binding, messageClass: MessageClass.Request, transactionId: tid, attributes: [] }, { fingerprint: true }),
  ];
  return [SAMPLE_REQUEST, SAMPLE_IPV4_RESPONSE, SAMPLE_IPV6_RESPONSE, SAMPLE_LONG_TERM_REQUEST, SAMPLE_SHA256_REQUEST].map(hex).concat(built);
}

/** Offsets of attribute headers in a well-formed message (walking stops at the first lie). */
function attributeHeaders(buf: Uint8Array): number[] {
  const offsets: number[] = [];
  for (let o = 20; o + 4 <= buf.length; ) {
    offsets.push(o);
    o += 4 + ((((buf[o + 2]! << 8) | buf[o + 3]!) + 3) & ~3);
  }
  return offsets;
}

function setLength(buf: Uint8Array, at: number, value: number): void {
  buf[at] = (value >>> 8) & 0xff;
  buf[at + 1] = value & 0xff;
}

/** One mutation of a valid message, chosen at random. */
const MUTATIONS: Array<[string, (m: Uint8Array) => Uint8Array]> = [
  ['bit flips', (m) => {
    const out = Uint8Array.from(m);
    for (let k = 1 + int(8); k > 0; k--) out[int(out.length)]! ^= 1 << int(8);
    return out;
  }],
  ['truncation', (m) => m.slice(0, int(m.length))],
  ['truncation with the header length fixed up', (m) => {
    const out = m.slice(0, 20 + 4 * int((m.length - 20) / 4 + 1));
    setLength(out, 2, out.length - 20);
    return out;
  }],
  ['trailing garbage', (m) => Uint8Array.from([...m, ...bytes(1 + int(16))])],
  ['header length-field lie', (m) => {
    const out = Uint8Array.from(m);
    setLength(out, 2, pick([0, 4, out.length - 24, out.length - 16, out.length, 0xfffc, int(0x10000)]));
    return out;
  }],
  ['attribute length-field lie', (m) => {
    const out = Uint8Array.from(m);
    const headers = attributeHeaders(out);
    if (headers.length === 0) return out;
    setLength(out, pick(headers) + 2, pick([0, 1, 3, 4, 7, 8, 19, 20, 21, 32, 763, 764, 0xffff, int(0x10000)]));
    return out;
  }],
  ['duplicated attribute', (m) => {
    const headers = attributeHeaders(m);
    if (headers.length === 0) return m;
    const i = int(headers.length);
    const start = headers[i]!;
    const end = headers[i + 1] ?? m.length;
    const out = Uint8Array.from([...m.subarray(0, end), ...m.subarray(start, end), ...m.subarray(end)]);
    setLength(out, 2, out.length - 20);
    return out;
  }],
  ['attribute type swap', (m) => {
    const out = Uint8Array.from(m);
    const headers = attributeHeaders(out);
    if (headers.length === 0) return out;
    const type = pick(Object.values(AttrType).filter((v): v is number => typeof v === 'number'));
    setLength(out, pick(headers), type);
    return out;
  }],
  ['many empty attributes', (m) => {
    const count = 1 + int(100);
    const out = new Uint8Array(m.length + 4 * count);
    out.set(m);
    for (let k = 0; k < count; k++) setLength(out, m.length + 4 * k, pick([AttrType.Padding, AttrType.Fingerprint, AttrType.MessageIntegrity, 0x7fff]));
    setLength(out, 2, out.length - 20);
    return out;
  }],
  ['random bytes behind a valid header', (m) => {
    const body = bytes(4 * int(40));
    const out = new Uint8Array(20 + body.length);
    out.set(m.subarray(0, 20));
    out.set(body, 20);
    setLength(out, 2, body.length);
    return out;
  }],
];

/** Runs `fn`, returning a description of any error that is not a StunDecodeError. */
function misbehaviour(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof StunDecodeError && NatpunchError.is(err) && err.code === 'ERR_STUN_DECODE') return undefined;
    return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  }
}

/** Everything a caller may do with bytes off the wire, asserting only StunDecodeError escapes. */
function exercise(input: Uint8Array): string | undefined {
  // These must never throw at all.
  try {
    isStunMessage(input);
    readMessageLength(input);
    isRfc3489BindingRequest(input);
  } catch (err) {
    return `isStunMessage/readMessageLength/isRfc3489BindingRequest threw ${String(err)}`;
  }
  const classic = misbehaviour(() => decodeMessage(input, { rfc3489: true }));
  if (classic) return `decodeMessage with rfc3489: ${classic}`;
  let msg: StunMessage | undefined;
  const failure = misbehaviour(() => {
    msg = decodeMessage(input);
  });
  if (failure || !msg) return failure;
  const decoded: StunMessage = msg;
  try {
    // Verifiers report, never throw.
    inspectIntegrity(decoded, KEY);
    inspectFingerprint(decoded);
  } catch (err) {
    return `a verifier threw ${String(err)}`;
  }
  for (const attribute of decoded.attributes) {
    for (const codec of CODECS) {
      const bad = probe(codec, attribute.value, decoded.transactionId);
      if (bad) return bad;
    }
  }
  const bad = misbehaviour(() => reflexiveAddress(decoded));
  if (bad) return `reflexiveAddress: ${bad}`;
  // Whatever decodes re-encodes to something that decodes to the same attributes.
  const again = decodeMessage(encodeMessage(decoded));
  assert.deepEqual(again.attributes.map((a) => [a.type, toHex(a.value)]), decoded.attributes.map((a) => [a.type, toHex(a.value)]));
  return undefined;
}

describe(`fuzzing the wire codec (seed ${SEED})`, { timeout: 120_000 }, () => {
  // Most inputs end in a thrown StunDecodeError; capturing a stack for each would be most of
  // the run time, and this test only looks at the errors' class and code.
  let stackTraceLimit: number;
  before(() => {
    stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
  });
  after(() => {
    Error.stackTraceLimit = stackTraceLimit;
  });

  it('replays every saved regression input without a stray error', () => {
    for (const { hex: input, what } of FUZZ_REGRESSIONS) assert.equal(exercise(hex(input)), undefined, what);
  });

  it(`feeds ${MESSAGES} random and mutated messages to decodeMessage and every reader; only StunDecodeError escapes`, () => {
    const seeds = corpus();
    const failures: string[] = [];
    let decoded = 0;
    const perKind = new Map<string, number>();
    for (let i = 0; i < MESSAGES && failures.length < 10; i++) {
      let input: Uint8Array;
      let kind: string;
      const roll = random();
      if (roll < 0.15) {
        kind = 'random bytes';
        input = bytes(int(120));
      } else {
        const [name, mutate] = pick(MUTATIONS);
        kind = name;
        input = mutate(pick(seeds));
        if (random() < 0.3) input = pick(MUTATIONS)[1](input); // mutations stack
      }
      perKind.set(kind, (perKind.get(kind) ?? 0) + 1);
      const failure = exercise(input);
      if (failure) failures.push(`${kind}: ${failure}\n  input: ${toHex(input)}`);
      else if (isStunMessage(input) || readMessageLength(input) === input.length) decoded += misbehaviour(() => decodeMessage(input)) === undefined ? 1 : 0;
    }
    assert.deepEqual(failures, [], `inputs that broke the codec (add them to fixtures/fuzz-regressions.ts):\n${failures.join('\n')}`);
    // The mutations must reach deep code, not only the header checks.
    assert.ok(decoded > MESSAGES / 10, `only ${decoded} of ${MESSAGES} inputs decoded; the mutations are too destructive`);
    assert.equal(perKind.size, MUTATIONS.length + 1);
  });

  it('feeds 100,000 random values to the attribute codecs; only StunDecodeError escapes and what decodes re-encodes', () => {
    const failures: string[] = [];
    for (let i = 0; i < 100_000 && failures.length < 10; i++) {
      // Mostly short values around the interesting lengths, some long ones.
      const length = random() < 0.9 ? int(40) : int(1000);
      const value = bytes(length);
      const tid = random() < 0.98 ? bytes(12) : bytes(int(20));
      const bad = probe(pick(CODECS), value, tid);
      if (bad) failures.push(`${bad}\n  value: ${toHex(value)} tid: ${toHex(tid)}`);
    }
    assert.deepEqual(failures, []);
  });

  it('rejects a 16 MB buffer at once, before copying it', () => {
    const huge = new Uint8Array(16 * 1024 * 1024);
    huge.set(hex('000100002112a442'));
    const started = process.hrtime.bigint();
    for (let i = 0; i < 100; i++) assert.throws(() => decodeMessage(huge), StunDecodeError);
    const perCallMs = Number(process.hrtime.bigint() - started) / 1e6 / 100;
    assert.ok(perCallMs < 5, `decodeMessage took ${perCallMs.toFixed(2)} ms per call on a 16 MB buffer`);
  });

  it('decodes a maximal message of 16383 attributes only when allowed, in bounded time', () => {
    const body = new Uint8Array(65532);
    for (let o = 0; o < body.length; o += 4) setLength(body, o, AttrType.Padding);
    const buf = new Uint8Array(20 + body.length);
    buf.set(hex('000100002112a442'));
    setLength(buf, 2, body.length);
    buf.set(body, 20);
    assert.throws(() => decodeMessage(buf), /more than 64 attributes/);
    assert.equal(decodeMessage(buf, { maxAttributes: Infinity }).attributes.length, 16383);
  });
});
