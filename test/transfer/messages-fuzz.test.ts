/**
 * Fuzzing the file-transfer parsers (STYLE §11): random and mutated frames throw nothing but a
 * NatpunchError (TransferDecodeError); decode(encode(m)) is m for every message; a byte stream
 * cut anywhere into chunks yields the same messages; and entry-path checks never throw anything
 * but a TransferError, and never pass a path that could leave the output directory. Seeded, so
 * deterministic; FUZZ_RUNS scales it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { NatpunchError } from '../../src/errors.js';
import { decodeMessage, encodeMessage, FRAME_HEADER_LENGTH, PROTOCOL_VERSION, type Entry, type Message } from '../../src/transfer/messages.js';
import { MessageReader } from '../../src/transfer/message-reader.js';
import { checkOffer, unsafeReason } from '../../src/transfer/entry-path.js';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 2000);
const params = { numRuns: RUNS, seed: 10 };

function onlyNatpunchErrors(run: () => unknown): void {
  try {
    run();
  } catch (error) {
    if (!NatpunchError.is(error)) throw new Error(`threw a non-NatpunchError: ${String(error)}`, { cause: error });
  }
}

const u53 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const sha = fc.uint8Array({ minLength: 32, maxLength: 32 });
const path = fc.string({ minLength: 1, maxLength: 60, unit: 'grapheme' });
const entry: fc.Arbitrary<Entry> = fc.oneof(
  fc.record({ kind: fc.constant('file' as const), path, mode: fc.nat(0o7777), size: u53 }),
  fc.record({ kind: fc.constant('directory' as const), path, mode: fc.nat(0o7777), size: fc.constant(0) }),
);
const message: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ type: fc.constant('offer' as const), version: fc.constant(PROTOCOL_VERSION), entries: fc.array(entry, { maxLength: 8 }) }),
  fc.record({ type: fc.constant('accept' as const), resume: fc.array(fc.record({ state: fc.constantFrom('partial' as const, 'complete' as const), offset: u53, prefixHash: sha }), { maxLength: 8 }) }),
  fc.record({ type: fc.constant('file' as const), index: fc.nat({ max: 0xffffffff }), offset: u53 }),
  fc.record({ type: fc.constant('data' as const), bytes: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({ type: fc.constant('file-end' as const), sha256: sha }),
  fc.constant({ type: 'done' as const }),
  fc.record({ type: fc.constant('summary' as const), files: fc.nat({ max: 0xffffffff }), bytes: u53 }),
  fc.record({ type: fc.constant('error' as const), reason: fc.string({ maxLength: 20 }), message: fc.string({ maxLength: 200 }) }),
);

const body = (frame: Uint8Array): Uint8Array => frame.subarray(FRAME_HEADER_LENGTH);

/** Normalise what decode returns for comparison (Buffers and Uint8Arrays alike). */
const plain = (v: unknown): unknown => (v instanceof Uint8Array ? [...v]
  : Array.isArray(v) ? v.map(plain)
    : typeof v === 'object' && v !== null ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)])) : v);

test('decode(encode(m)) is m for every message', () => {
  fc.assert(fc.property(message, (m) => {
    const frame = encodeMessage(m);
    assert.deepEqual(plain(decodeMessage(frame[0]!, body(frame))), plain(m));
  }), params);
});

test('random and mutated bodies of every type throw only TransferDecodeError', () => {
  const mutated = fc.tuple(message, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 6 }), fc.integer({ min: -8, max: 8 })).map(([m, edits, cut]) => {
    const frame = encodeMessage(m);
    const out = new Uint8Array(Math.max(0, frame.length - FRAME_HEADER_LENGTH + cut));
    out.set(body(frame).subarray(0, out.length));
    for (const [at, value] of edits) if (out.length > 0) out[at % out.length] = value;
    return [frame[0]!, out] as const;
  });
  fc.assert(fc.property(fc.oneof(mutated, fc.tuple(fc.nat(12), fc.uint8Array({ maxLength: 600 }))), ([type, bytes]) => onlyNatpunchErrors(() => decodeMessage(type, bytes))), params);
});

test('a byte stream cut into arbitrary chunks yields the same messages; random streams only TransferDecodeError', async () => {
  await fc.assert(fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(40), { maxLength: 30 }), async (messages, cuts) => {
    const stream = Buffer.concat(messages.map((m) => encodeMessage(m)));
    const chunks: Buffer[] = [];
    let at = 0;
    for (const cut of cuts) { chunks.push(stream.subarray(at, at + cut)); at += cut; }
    chunks.push(stream.subarray(at));
    const reader = new MessageReader(Readable.from(chunks.filter((c) => c.length > 0)));
    for (const m of messages) assert.deepEqual(plain((await reader.next())!), plain(m));
    assert.equal(await reader.next(), null);
  }), { ...params, numRuns: Math.ceil(RUNS / 4) });
  await fc.assert(fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 6 }), async (chunks) => {
    const reader = new MessageReader(Readable.from(chunks.filter((c) => c.length > 0).map((c) => Buffer.from(c))));
    try {
      while ((await reader.next()) !== null);
    } catch (error) {
      if (!NatpunchError.is(error)) throw error;
    }
  }), { ...params, numRuns: Math.ceil(RUNS / 4) });
});

test('a frame longer than its type allows is refused from its header alone', async () => {
  const header = Buffer.from([4, 0xff, 0xff, 0xff, 0xff]); // DATA of 4 GiB
  await assert.rejects(new MessageReader(Readable.from([header])).next(), (e: NatpunchError) => e.code === 'ERR_TRANSFER_DECODE' && /DATA: body of 4294967295 bytes, at most 262144 allowed/.test(e.message));
});

test('a path the checks pass never leaves the directory: no absolute path, no ".." component, no control character', () => {
  const hostile = fc.array(fc.constantFrom('..', '.', '', 'a', 'b c', '/', '\\', '\u0000', '\u001b', '.natpunch-partial', 'é'), { maxLength: 8 }).map((parts) => parts.join(''));
  fc.assert(fc.property(fc.oneof(hostile, fc.string({ maxLength: 40, unit: 'binary' })), (p) => {
    if (unsafeReason(p) !== null) return;
    assert.ok(!p.startsWith('/'));
    assert.ok(!p.split('/').some((c) => c === '..' || c === '.' || c === ''), p);
    // eslint-disable-next-line no-control-regex
    assert.ok(!/[\u0000-\u001f\u007f\\]/.test(p), p);
  }), params);
  fc.assert(fc.property(fc.array(entry, { maxLength: 10 }), (entries) => {
    try {
      checkOffer(entries, { defaultMaxEntries: 5 });
    } catch (error) {
      assert.equal((error as NatpunchError).code, 'ERR_TRANSFER');
    }
  }), params);
});
