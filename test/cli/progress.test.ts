import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PipeProgress } from '../../src/cli/pipe-progress.js';
import { loopbackServer, scratch, startCli } from '../support/loopback-cli.js';

/** A connection's counters, moved by hand. */
function fakeConnection(): { remotePeerId: string; path: 'direct-udp'; stats: { bytesSent: number; bytesReceived: number } } {
  return { remotePeerId: 'peer', path: 'direct-udp', stats: { bytesSent: 0, bytesReceived: 0 } } as never;
}

test('--progress reports bytes and the rate over the last two seconds, each way', () => {
  const connection = fakeConnection();
  let now = 0;
  const lines: string[] = [];
  const progress = new PipeProgress(connection as never, { form: 'json', now: () => now, write: (text) => lines.push(text) });
  now = 1000;
  connection.stats.bytesSent = 1_000_000;
  assert.deepEqual(progress.report(), { peer: 'peer', sent: 1_000_000, received: 0, sentRate: 1_000_000, receivedRate: 0, path: 'direct-udp' });
  now = 2000;
  connection.stats.bytesSent = 3_000_000;
  connection.stats.bytesReceived = 500;
  assert.equal(progress.report().sentRate, 1_500_000, 'over the two seconds since the start');
  now = 5000; // nothing moved for three seconds: the old samples have left the window
  assert.equal(progress.report().sentRate, 0);
  assert.deepEqual(JSON.parse(lines[0]!), { event: 'progress', peer: 'peer', sent: 1_000_000, received: 0, sentRate: 1_000_000, receivedRate: 0, path: 'direct-udp' });
});

test('--progress on a terminal redraws one line and takes it off at the end; in a log it writes whole lines', () => {
  const connection = fakeConnection();
  let now = 0;
  const tty: string[] = [];
  const bar = new PipeProgress(connection as never, { form: 'tty', now: () => now, write: (text) => tty.push(text) });
  now = 1000;
  connection.stats.bytesReceived = 2 * 1024 * 1024;
  bar.report();
  bar.stop();
  assert.deepEqual(tty, ['\r\x1b[Ksent 0 B (0 B/s), received 2.0 MiB (2.0 MiB/s) over direct-udp', '\r\x1b[K']);
  const log: string[] = [];
  new PipeProgress(connection as never, { form: 'log', now: () => now, write: (text) => log.push(text) }).report();
  assert.match(log[0]!, /^natpunch: sent 0 B .* over direct-udp\n$/);
});

test('connect and listen --progress --json emit progress events while data flows, then the closed summary', async (t) => {
  const server = await loopbackServer(t);
  const dir = await scratch(t);
  const listen = startCli(t, 'listen', ['listen', '--server', server, '--key', join(dir, 'l.key'), '--once', '--json', '--progress']);
  const id = String((await listen.until((e) => e['event'] === 'ready', 'ready'))['id']);
  const connect = startCli(t, 'connect', ['connect', id, '--server', server, '--key', join(dir, 'c.key'), '--json', '--progress']);
  await connect.until((e) => e['event'] === 'connected', 'connected');
  listen.child.stdin!.end();
  // Data keeps flowing until each side has reported some of it: a progress event comes each second.
  const chunk = Buffer.alloc(16 * 1024, 1);
  const feeding = setInterval(() => connect.child.stdin!.write(chunk), 20);
  t.after(() => clearInterval(feeding));
  const sent = await connect.until((e) => e['event'] === 'progress' && Number(e['sent']) > 0, 'a progress event with bytes sent');
  const received = await listen.until((e) => e['event'] === 'progress' && Number(e['received']) > 0, 'a progress event with bytes received');
  clearInterval(feeding);
  connect.child.stdin!.end();
  assert.equal(sent['peer'], id);
  assert.match(String(sent['path']), /^direct-/);
  assert.ok(Number(sent['sentRate']) > 0, JSON.stringify(sent));
  assert.ok(Number(received['receivedRate']) > 0, JSON.stringify(received));
  assert.equal(await listen.exited(30_000), 0, listen.stderr());
  assert.equal(await connect.exited(30_000), 0, connect.stderr());
  const closed = await listen.until((e) => e['event'] === 'closed', 'closed');
  assert.equal(closed['received'], listen.received(), 'the summary counts what reached stdout');
});
