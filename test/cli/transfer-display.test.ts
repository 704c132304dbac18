/**
 * How send/receive show progress, on a fake clock: --json progress events at most four a second
 * plus the final one and a done event; on a terminal a bar redrawn in place with the rate, the
 * ETA and the path in use, cleared when the path changes; a last line with count, bytes, time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { TransferDisplay } from '../../src/cli/transfer-display.js';
import type { TransferProgress, TransferSummary } from '../../src/transfer/index.js';
import type { PathKind } from '../../src/peer/connection.js';

const MiB = 1024 * 1024;
const summary: TransferSummary = { files: 2, directories: 1, bytes: 10 * MiB, transferred: 10 * MiB, resumed: 0, paths: ['d', 'd/a', 'd/b'] };

function run(json: boolean, tty: boolean): { out: string[]; display: TransferDisplay; connection: EventEmitter & { path: PathKind }; step: (ms: number, p: Partial<TransferProgress>) => void } {
  const out: string[] = [];
  let clock = 0;
  const display = new TransferDisplay({ json, tty, write: (text) => out.push(text), now: () => clock });
  const connection = Object.assign(new EventEmitter(), { path: 'relay' as PathKind });
  display.attach(connection);
  const step = (ms: number, p: Partial<TransferProgress>): void => {
    clock += ms;
    display.progress({ bytes: 0, total: 10 * MiB, transferred: 0, resumed: 0, file: 'd/a', files: 0, ...p });
  };
  return { out, display, connection, step };
}

test('--json: progress events at most four a second, a final one, then done', () => {
  const { out, display, step } = run(true, false);
  // 10 MiB in 64 KiB steps every 10 ms: 1.6 s of progress callbacks.
  for (let bytes = 0; bytes < 10 * MiB; bytes += 64 * 1024) step(10, { bytes, transferred: bytes });
  step(10, { bytes: 10 * MiB, transferred: 10 * MiB, file: null, files: 2 });
  display.done(summary, 'sent', 'to PEER', { peer: 'PEER' });
  const events = out.map((line) => JSON.parse(line) as Record<string, unknown>);
  const progress = events.filter((e) => e['event'] === 'progress');
  assert.ok(progress.length >= 6 && progress.length <= 8, `${progress.length} progress events over 1.6 s`);
  assert.deepEqual(progress.at(-1), { event: 'progress', bytes: 10 * MiB, total: 10 * MiB, file: null, rate: 6553600, transferred: 10 * MiB, resumed: 0, files: 2 });
  assert.equal(events.filter((e) => e['event'] === 'progress' && e['file'] === null).length, 1, 'the final progress event comes once');
  assert.deepEqual(events.at(-1), { event: 'done', files: 2, directories: 1, bytes: 10 * MiB, transferred: 10 * MiB, resumed: 0, ms: 1610, peer: 'PEER' });
});

test('on a terminal: a bar with rate, ETA and the path in use; a path change clears it; a last line', () => {
  const { out, display, connection, step } = run(false, true);
  step(0, { bytes: 0 });
  step(1000, { bytes: 2 * MiB, transferred: 2 * MiB });
  const bar = out.at(-1)!;
  assert.equal(bar, '\r\x1b[K[####----------------]  20% 2.0 MiB/10.0 MiB 2.0 MiB/s ETA 0:04 relay d/a');
  connection.path = 'direct-udp';
  connection.emit('path', { path: 'direct-udp', technique: 'udp-hole-punch', remote: '203.0.113.1:4000', reason: 'upgrade' });
  assert.equal(out.at(-1), '\r\x1b[K', 'the bar is cleared before the path line is printed');
  step(1000, { bytes: 4 * MiB, transferred: 4 * MiB, file: 'd/b', files: 1 });
  assert.match(out.at(-1)!, /  40% 4\.0 MiB\/10\.0 MiB 2\.0 MiB\/s ETA 0:03 direct-udp d\/b$/);
  const before = out.length;
  step(50, { bytes: 4 * MiB + 1, transferred: 4 * MiB + 1 });
  assert.equal(out.length, before, 'no redraw within 100 ms');
  display.done({ ...summary, resumed: 3 * MiB, transferred: 7 * MiB }, 'received', 'from PEER into /in');
  assert.equal(out.at(-2), '\r\x1b[K');
  assert.equal(out.at(-1), 'natpunch: received 2 files, 10.0 MiB, 3.0 MiB of it already there from an earlier run, from PEER into /in in 2.0 s (3.4 MiB/s)\n');
});

test('neither --json nor a terminal: no bar, only the last line', () => {
  const { out, display, step } = run(false, false);
  step(500, { bytes: 5 * MiB, transferred: 5 * MiB });
  display.done(summary, 'sent', 'to PEER');
  assert.deepEqual(out, ['natpunch: sent 2 files, 10.0 MiB, to PEER in 0.5 s (20.0 MiB/s)\n']);
});

test('checks of bytes already at the receiver are shown from 1 MiB up, as a line or a checking event', () => {
  const human = run(false, true);
  human.step(0, { bytes: 0 });
  human.display.checking('small', 1000, 'kept from an earlier run');
  human.display.checking('big.bin', 16 * MiB, 'kept from an earlier run');
  assert.deepEqual(human.out.slice(-2), ['\r\x1b[K', 'natpunch: checking the 16.0 MiB of big.bin kept from an earlier run (to resume)\n']);
  const json = run(true, false);
  json.display.checking('big.bin', 16 * MiB, 'the receiver already has');
  assert.deepEqual(json.out, ['{"event":"checking","file":"big.bin","bytes":16777216}\n']);
});
