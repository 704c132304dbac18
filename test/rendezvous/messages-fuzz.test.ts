/**
 * Fuzzing the version-2 shapes (STYLE §11): typed candidates, candidate lists, trickle bodies and
 * the new messages. Random and near-valid values throw nothing but RendezvousProtocolError (or,
 * once signed, RendezvousVerifyError); valid ones survive wire -> validate -> punch layer ->
 * wire unchanged; a verified trickle carries exactly what was signed.
 * Deterministic: fast-check runs from FUZZ_SEED (default fixed); a failure prints its seed and path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { generateIdentity } from '../../src/identity/index.js';
import { CANDIDATE_TYPES, PREDICTION_BUDGET, candidatePriority } from '../../src/punch/candidate.js';
import {
  type CandidateRecord, DEFAULT_MESSAGE_LIMITS, DEFAULT_TRICKLE_LIMITS, DOMAIN, RendezvousError, RendezvousProtocolError, RendezvousVerifyError,
  TrickleSessions, candidateRecord, fromCandidateRecord, signObject, toCandidateRecord, validate, validateTrickleBody,
} from '../../src/rendezvous/index.js';
import { ipFromBytes } from '../../src/wire/index.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 0x7c1c);
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 2000);
const options = { seed: SEED, numRuns: RUNS };
const session = 'AAAAAAAAAAAAAAAAAAAAAA';

/** Only the protocol's own errors may come out. */
function onlyProtocolErrors(run: () => unknown): void {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof RendezvousProtocolError, String(error));
  }
}

/** A unicast IP in canonical text, from random bytes (v4 or v6), avoiding what a peer may not be aimed at. */
const unicastIp = fc.oneof(
  fc.tuple(fc.integer({ min: 1, max: 223 }), fc.nat(255), fc.nat(255), fc.integer({ min: 1, max: 254 })).map((b) => b.join('.')),
  fc.uint8Array({ minLength: 16, maxLength: 16 }).filter((b) => b[0] !== 0xff && b.some((x) => x !== 0)).map((b) => ipFromBytes(b))
    .filter((ip) => !ip.startsWith('::ffff:')),
);

/** A valid typed candidate record. */
const validRecord: fc.Arbitrary<CandidateRecord> = fc.record({
  kind: fc.constantFrom(...CANDIDATE_TYPES), transport: fc.constantFrom('udp' as const, 'tcp' as const), address: unicastIp,
  port: fc.integer({ min: 1, max: 65_535 }), local: fc.integer({ min: 0, max: 65_535 }), window: fc.integer({ min: 1, max: PREDICTION_BUDGET.maxWindow }),
}).map(({ kind, transport, address, port, local, window }) => {
  const record: CandidateRecord = { kind, transport, address, port, priority: candidatePriority(kind, local) };
  if (kind === 'predicted') {
    const first = Math.max(1, Math.min(port, 65_536 - window));
    record.range = { first, last: first + window - 1 };
    record.port = first + (port % window);
  }
  return record;
});

/** Any JSON value, often in the shape of a candidate with one field off. */
const nearRecord = fc.oneof(
  fc.jsonValue(),
  fc.tuple(validRecord, fc.constantFrom('kind', 'transport', 'address', 'port', 'priority', 'range'), fc.jsonValue())
    .map(([record, key, value]) => ({ ...record, [key]: value })),
);

test('a candidate record: arbitrary and near-valid values fail only with RendezvousProtocolError', () => {
  fc.assert(fc.property(nearRecord, (value) => onlyProtocolErrors(() => candidateRecord(value, 'c'))), options);
});

test('a valid candidate survives wire -> validate -> punch layer -> wire unchanged', () => {
  fc.assert(fc.property(validRecord, (record) => {
    const checked = candidateRecord(JSON.parse(JSON.stringify(record)), 'c');
    assert.deepEqual(checked, record);
    assert.deepEqual(toCandidateRecord(fromCandidateRecord(checked)), record);
  }), options);
});

test('the new messages and trickle bodies: arbitrary shapes fail only with RendezvousProtocolError', () => {
  const shaped = fc.record({ type: fc.constantFrom('trickle', 'candidates', 'ack', 'register', 'registered', 'hello', 'error', 'report') })
    .chain((base) => fc.dictionary(fc.constantFrom('id', 'session', 'signed', 'version', 'versions', 'capabilities', 'code', 'message', 'outcome', 'path', 'technique', 'ms', 'x'), fc.jsonValue())
      .map((extra) => ({ ...extra, ...base })));
  fc.assert(fc.property(shaped, (value) => onlyProtocolErrors(() => validate(value))), options);
  const body = fc.record({
    session: fc.oneof(fc.constant(session), fc.string()), seq: fc.oneof(fc.integer(), fc.double()),
    candidates: fc.array(nearRecord, { maxLength: 40 }), end: fc.oneof(fc.constant(undefined), fc.boolean(), fc.jsonValue()),
  });
  fc.assert(fc.property(body, (value) => onlyProtocolErrors(() => validateTrickleBody(value))), options);
});

test('a trickle a peer signs is received exactly as signed; any other signed body is refused with a reason', () => {
  const sender = generateIdentity();
  const limits = { ...DEFAULT_TRICKLE_LIMITS, maxMessages: 1_000_000, maxCandidates: 1_000_000 };
  const receiver = new TrickleSessions(limits, DEFAULT_MESSAGE_LIMITS);
  receiver.open(session, { peer: sender.peerId, receives: true, sends: false, local: [] });
  let seq = 0;
  const list = fc.array(validRecord, { maxLength: 8 }).map((records) => {
    const seen = new Set<string>();
    return records.filter((r) => r.kind !== 'predicted' && !seen.has(`${r.transport} ${r.address} ${r.port}`) && seen.add(`${r.transport} ${r.address} ${r.port}`));
  });
  fc.assert(fc.property(list, (records) => {
    const signed = signObject(sender, DOMAIN.trickle, { session, seq: ++seq, candidates: records });
    const batch = receiver.receive({ type: 'candidates', session, signed });
    assert.deepEqual(batch.candidates.map(toCandidateRecord), records);
  }), { ...options, numRuns: Math.min(RUNS, 300) });
  fc.assert(fc.property(fc.jsonValue(), (body) => {
    try {
      receiver.receive({ type: 'candidates', session, signed: signObject(sender, DOMAIN.trickle, body) });
    } catch (error) {
      assert.ok(error instanceof RendezvousVerifyError || error instanceof RendezvousProtocolError || error instanceof RendezvousError, String(error));
    }
  }), { ...options, numRuns: Math.min(RUNS, 300) });
  receiver.clear();
});
