import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatGrid, formatHtml, pairLine } from '../../src/lab/matrix-report.js';
import type { PairResult } from '../../src/lab/matrix.js';

// How `natpunch lab matrix` reports a pair that started on the relay and moved to a direct path
// (the path it ended on counts; the start and the time to direct are shown beside it).
const results: PairResult[] = [
  { a: 'port-restricted', b: 'port-restricted', ok: true, path: 'direct-udp', technique: 'udp-hole-punch', ms: 40, directMs: 40, wallMs: 3000 },
  { a: 'port-restricted', b: 'symmetric-random', ok: true, path: 'direct-udp', technique: 'udp-birthday', ms: 1300, startPath: 'relay', directMs: 2100, wallMs: 6000 },
  { a: 'symmetric-random', b: 'symmetric-random', ok: true, path: 'relay', technique: 'turn-udp', ms: 1400, wallMs: 20000 },
];

test('pairLine: the path it ended on, and for an upgraded pair where it started and when it went direct', () => {
  assert.match(pairLine(results[0]!), /^port-restricted × port-restricted\s+direct-udp\s+udp-hole-punch\s+40 ms$/);
  assert.match(pairLine(results[1]!), /direct-udp\s+udp-birthday\s+1300 ms {2}\(started on the relay; direct after 2100 ms\)$/);
  assert.match(pairLine(results[2]!), /relay\s+turn-udp\s+1400 ms$/);
});

test('formatGrid counts an upgraded pair as direct and says how many started on the relay', () => {
  const grid = formatGrid(['port-restricted', 'symmetric-random'], results);
  assert.match(grid, /3 pairs: 2 direct \(1 of them after starting on the relay\), 1 through the relay, 0 failed\./);
  const rows = grid.split('\n');
  assert.match(rows[1]!, /^port-restricted\s+U {2}U/);
  assert.match(rows[2]!, /^symmetric-random\s+R/);
});

test('formatHtml shows the time to direct in an upgraded pair\'s cell', () => {
  const page = formatHtml(['port-restricted', 'symmetric-random'], results, { transport: 'auto', date: '2026-12-05' });
  assert.match(page, /udp-birthday<br>1300 ms<br>direct at 2100 ms/);
  assert.match(page, /started on the relay, direct after 2100 ms/);
});
