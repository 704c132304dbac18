import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { natpunch } from '../support/cli.js';
import { type JsonEvent, eventChild } from '../support/json-events.js';
import { localHost, stopProcess } from '../support/process.js';
import { startServe } from '../support/serve.js';
import { once } from '../support/wait.js';
import { assertForwarded, startForwarding } from '../support/forward.js';

async function loopbackServe(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const serve = await startServe(localHost, '127.0.0.1', '127.0.0.2', ['--port', '0', '--alt-port', '0', '--http-port', '0', '--no-relay']);
  t.after(() => serve.stop());
  const url = /rendezvous (ws:\/\/\S+)/.exec(serve.output.text)?.[1];
  assert.ok(url, `no rendezvous URL in: ${serve.output.text}`);
  return url;
}

async function scratch(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'natpunch-forward-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('forward × expose on loopback: 4 parallel 8 MiB downloads intact, an interactive session answering beside them', { timeout: 240_000 }, async (t) => {
  const url = await loopbackServe(t);
  const dir = await scratch(t);
  const bytes = 8 << 20;
  const run = await startForwarding({ exposing: localHost, forwarding: localHost }, url, dir, bytes);
  t.after(() => run.stop());
  assert.match(run.listen, /^127\.0\.0\.1:\d+$/);
  const report = await run.client(4);
  t.diagnostic(`4 × 8 MiB in ${report.bulkMs} ms; ${report.duringBulk} round trips meanwhile, slowest ${Math.max(...report.roundTrips)} ms: ${report.roundTrips.join(' ')}`);
  assertForwarded(report, run.service, bytes, 4, 1_500);
  // A second batch over the same peer connection: one 'connected' on each side in all.
  assertForwarded(await run.client(2), run.service, bytes, 2, 1_500);
  assert.equal(run.forward.events.filter((e) => e['event'] === 'connected').length, 1);
  assert.equal(run.expose.events.filter((e) => e['event'] === 'error').length, 0, run.expose.stderr());
});

test('when the exposing side restarts, forward connects again for the next TCP connection', { timeout: 240_000 }, async (t) => {
  const url = await loopbackServe(t);
  const dir = await scratch(t);
  const bytes = 1 << 20;
  const run = await startForwarding({ exposing: localHost, forwarding: localHost }, url, dir, bytes);
  t.after(() => run.stop());
  assertForwarded(await run.client(1), run.service, bytes, 1);
  // The same key again: the same peer id, a new process (GO_AWAY from the old one on SIGTERM).
  await stopProcess(run.expose.child);
  const again = eventChild(localHost.spawn(natpunch('expose', String(run.service.port), '--server', url, '--key', join(dir, 'expose.key'), '--json')), 'expose again');
  t.after(() => stopProcess(again.child));
  await again.until((e) => e['event'] === 'ready', 'ready');
  assertForwarded(await run.client(1), run.service, bytes, 1);
  assert.equal(run.forward.events.filter((e) => e['event'] === 'connected').length, 2, run.forward.stderr());
  assert.equal(run.forward.events.filter((e) => e['event'] === 'error').length, 0, run.forward.stderr());
});

test('a service the exposing side cannot reach: forward reports connect-refused, the local client sees a reset, forward goes on', { timeout: 120_000 }, async (t) => {
  const url = await loopbackServe(t);
  const dir = await scratch(t);
  // A port with nothing listening: bound, then closed.
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const deadPort = (probe.address() as { port: number }).port;
  probe.close();
  const expose = eventChild(localHost.spawn(natpunch('expose', String(deadPort), '--server', url, '--key', join(dir, 'e.key'), '--json')), 'expose');
  t.after(() => stopProcess(expose.child));
  const { id } = await expose.until((e) => e['event'] === 'ready', 'ready') as { id: string };
  const forward = eventChild(localHost.spawn(natpunch('forward', id, '--listen', '0', '--server', url, '--key', join(dir, 'f.key'), '--json')), 'forward');
  t.after(() => stopProcess(forward.child));
  const ready = await forward.until((e) => e['event'] === 'ready', 'ready');
  const port = Number(String(ready['listen']).split(':').pop());
  for (let i = 0; i < 2; i++) {
    const { createConnection } = await import('node:net');
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.write('hello');
    const [error] = await once(socket, 'error').catch((e: unknown) => [e]);
    assert.equal((error as NodeJS.ErrnoException).code, 'ECONNRESET');
  }
  // The reset reaches the client before forward's event line reaches us: wait for the line.
  const errors = (): JsonEvent[] => forward.events.filter((e) => e['event'] === 'error');
  await forward.until((e) => e['event'] === 'error' && errors().length >= 2, 'an error event for each of the two connections');
  const reported = errors();
  assert.equal(reported.length, 2, forward.stderr());
  assert.equal(reported[0]!['code'], 'ERR_MUX_RESET');
  assert.match(String(reported[0]!['message']), new RegExp(`connect-refused.*127\\.0\\.0\\.1:${deadPort} refused the connection on the exposing side \\(is the service running\\?\\)`));
  assert.equal(forward.child.exitCode, null, 'forward still runs');
  // A second forward on the port the first one holds: exit 1, saying so.
  const clash = eventChild(localHost.spawn(natpunch('forward', id, '--listen', String(port), '--server', url, '--key', join(dir, 'f2.key'), '--json')), 'forward on a taken port');
  t.after(() => stopProcess(clash.child));
  assert.equal(await clash.exited(60_000), 1, clash.stderr());
  const [clashError] = clash.events.filter((e) => e['event'] === 'error');
  assert.match(String(clashError?.['message']), new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use \\(pick another --listen port\\)`));
});

test('forward and expose usage errors exit 2 and name what is wrong', async () => {
  const run = async (...args: string[]): Promise<{ code: number; stderr: string }> => {
    const [node, ...rest] = natpunch(...args);
    try {
      await promisify(execFile)(node!, rest, { timeout: 30_000 });
      return { code: 0, stderr: '' };
    } catch (error) {
      return error as { code: number; stderr: string };
    }
  };
  const cases: [string[], RegExp][] = [
    [['expose', '--server', 'ws://127.0.0.1:1/'], /give exactly one \[HOST:\]PORT/],
    [['expose', 'localhost:http', '--server', 'ws://127.0.0.1:1/'], /service "localhost:http": expected \[HOST:\]PORT/],
    [['forward', 'not-an-id', '--listen', '8080', '--server', 'ws://127.0.0.1:1/'], /"not-an-id" is not a peer id/],
    [['expose', '8080'], /--server URL is required/],
  ];
  for (const [args, message] of cases) {
    const { code, stderr } = await run(...args);
    assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
    assert.match(stderr, message);
  }
  for (const command of ['expose', 'forward']) {
    const [node, ...rest] = natpunch(command, '--help');
    const { stdout } = await promisify(execFile)(node!, rest);
    assert.match(stdout, new RegExp(`^usage: natpunch ${command} `));
  }
});
