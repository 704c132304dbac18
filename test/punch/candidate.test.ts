import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  type Candidate, type SignalledCandidate, CANDIDATE_TYPES, MAX_PRIORITY, TYPE_PREFERENCE, candidatePriority, candidateTypeOf, checkCandidates, prioritise,
} from '../../src/punch/candidate.js';

const at = (address: string, port: number) => ({ family: (address.includes(':') ? 6 : 4) as 4 | 6, address, port });

test('priorities follow RFC 8445 §5.1.2.1: 2^24 type preference + 2^8 local preference + 256 - component', () => {
  // The figures every WebRTC stack prints for a lone host and srflx candidate of component 1.
  assert.equal(candidatePriority('host', 65_535), 2_130_706_431);
  assert.equal(candidatePriority('srflx', 65_535), 1_694_498_815);
  assert.equal(candidatePriority('relay', 65_535), 16_777_215);
  assert.equal(candidatePriority('host', 0, 256), 2 ** 24 * 126);
  for (const type of CANDIDATE_TYPES) {
    const p = candidatePriority(type, 65_535);
    assert.ok(p >= 1 && p <= MAX_PRIORITY, type);
    assert.equal(p % 256, 255, `${type}: component 1`);
    assert.equal(Math.floor(p / 2 ** 24), TYPE_PREFERENCE[type], type);
  }
  assert.throws(() => candidatePriority('host', 65_536), /local preference 65536, expected an integer in 0\.\.65535/);
  assert.throws(() => candidatePriority('host', 1, 0), /component ID 0, expected an integer in 1\.\.256/);
});

test('type preferences: host > mapped > srflx > prflx > predicted > relay, all within RFC 8445\'s 0..126', () => {
  const order = [...CANDIDATE_TYPES].sort((a, b) => TYPE_PREFERENCE[b] - TYPE_PREFERENCE[a]);
  assert.deepEqual(order, ['host', 'mapped', 'srflx', 'prflx', 'predicted', 'relay']);
  for (const type of CANDIDATE_TYPES) assert.ok(TYPE_PREFERENCE[type] >= 0 && TYPE_PREFERENCE[type] <= 126);
});

test('prioritise gives each candidate of one type its own local preference, UDP above TCP, repeats once', () => {
  const udp = prioritise([
    { type: 'host', address: at('10.0.0.2', 1) }, { type: 'host', address: at('10.0.0.3', 1) },
    { type: 'srflx', address: at('203.0.113.5', 1) }, { type: 'srflx', address: at('10.0.0.2', 1) },
  ], 'udp');
  assert.deepEqual(udp.map((c) => [c.type, c.priority]), [
    ['host', candidatePriority('host', 65_535)], ['host', candidatePriority('host', 65_534)], ['srflx', candidatePriority('srflx', 65_535)],
  ], 'the repeated address keeps its first type');
  const tcp = prioritise([{ type: 'host', address: at('10.0.0.2', 1) }], 'tcp');
  assert.deepEqual(tcp.map((c) => [c.transport, c.priority]), [['tcp', candidatePriority('host', 32_767)]]);
  // Trickled candidates continue the count, so no two of one type share a priority in a session.
  const used = new Map();
  prioritise([{ type: 'mapped', address: at('198.51.100.1', 1) }], 'udp', used);
  assert.deepEqual(prioritise([{ type: 'mapped', address: at('198.51.100.2', 1) }], 'udp', used).map((c) => c.priority), [candidatePriority('mapped', 65_534)]);
  assert.deepEqual(prioritise([{ type: 'predicted', address: at('198.51.100.2', 7), range: { first: 1, last: 9 } }], 'udp')[0]!.range, { first: 1, last: 9 });
});

test('checkCandidates: UDP ones, highest priority first; a predicted window as one target per port, nearest the guess first', () => {
  const c = (type: SignalledCandidate['type'], transport: 'udp' | 'tcp', port: number, localPreference: number): SignalledCandidate => ({
    type, transport, address: at('192.0.2.1', port), priority: candidatePriority(type, localPreference),
  });
  const list = [c('srflx', 'udp', 1, 65_535), c('relay', 'udp', 2, 65_535), c('host', 'tcp', 3, 65_535), c('host', 'udp', 4, 1),
    { ...c('predicted', 'udp', 7, 65_535), range: { first: 5, last: 9 } }, { ...c('predicted', 'tcp', 7, 65_535), range: { first: 5, last: 9 } }];
  const predicted = (port: number): Candidate => ({ type: 'predicted', address: at('192.0.2.1', port) });
  assert.deepEqual(checkCandidates(list), [
    { type: 'host', address: at('192.0.2.1', 4) }, { type: 'srflx', address: at('192.0.2.1', 1) },
    predicted(7), predicted(6), predicted(8), predicted(5), predicted(9),
    { type: 'relay', address: at('192.0.2.1', 2) },
  ]);
});

test('candidateTypeOf classifies an address nobody typed from its bytes, not its spelling', () => {
  const table: [string, 'host' | 'srflx'][] = [
    ['10.1.2.3', 'host'], ['192.168.1.1', 'host'], ['172.20.0.1', 'host'], ['169.254.0.1', 'host'], ['127.0.0.1', 'host'],
    ['203.0.113.5', 'srflx'], ['100.64.0.1', 'srflx'], ['172.32.0.1', 'srflx'],
    ['::1', 'host'], ['fe80::1', 'host'], ['febf::1', 'host'], ['fc00::1', 'host'], ['fdff::1', 'host'],
    ['fec0::1', 'srflx'], ['2001:db8::1', 'srflx'], ['fcdb::1', 'host'], ['f::1', 'srflx'],
  ];
  for (const [address, type] of table) assert.equal(candidateTypeOf(at(address, 1)), type, address);
});

test('checkCandidates with stride 2: every second port of a window first (the guess leading), then the rest', () => {
  const window: SignalledCandidate = {
    type: 'predicted', transport: 'udp', address: at('192.0.2.1', 100), priority: candidatePriority('predicted', 65_535), range: { first: 100, last: 105 },
  };
  assert.deepEqual(checkCandidates([window], { stride: 2 }).map((c) => c.address.port), [100, 102, 104, 101, 103, 105]);
  // A counter that counts down: the guess is the top of the range, and the walk goes down.
  assert.deepEqual(checkCandidates([{ ...window, address: at('192.0.2.1', 105) }], { stride: 2 }).map((c) => c.address.port), [105, 103, 101, 104, 102, 100]);
});

