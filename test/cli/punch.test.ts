import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { natpunch, runCli } from '../support/cli.js';
import { type CliChild, cliChild, scratch } from '../support/loopback-cli.js';
import { startServe } from '../support/serve.js';
import { localHost } from '../support/process.js';
import { ABORT_CASES, abortMidTransfer } from '../support/abort-scenario.js';

/**
 * `natpunch punch` on loopback: two processes, each with its own UDP port and the other's
 * address, no server. NATPUNCH_PUNCH_TIMEOUT_MS shortens the punching budget (30 s by default)
 * where a test waits for it to run out.
 */

/** Two UDP ports free on 127.0.0.1 just now (bound on port 0, then released). */
async function freeUdpPorts(): Promise<[number, number]> {
  const sockets = [dgram.createSocket('udp4'), dgram.createSocket('udp4')];
  await Promise.all(sockets.map(async (s) => { s.bind(0, '127.0.0.1'); await once(s, 'listening'); }));
  const ports = sockets.map((s) => s.address().port) as [number, number];
  await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

function startPunch(t: TestContext, name: string, args: readonly string[], env: Record<string, string> = {}): CliChild {
  const [node, ...rest] = natpunch('punch', ...args);
  return cliChild(t, spawn(node!, rest, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } }), name);
}

/** Everything the child writes to stdout, hashed once it ends. */
function stdoutHash(child: CliChild): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  child.child.stdout!.on('data', (chunk: Buffer) => { hash.update(chunk); bytes += chunk.length; });
  return once(child.child.stdout!, 'end').then(() => ({ sha256: hash.digest('hex'), bytes }));
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

async function peerId(key: string): Promise<string> {
  const result = await runCli('id', '--key', key);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.trim();
}

test('two natpunch punch processes on loopback move 1 MiB each way intact, direct-udp, encrypted', async (t) => {
  const dir = await scratch(t);
  const [portA, portB] = await freeUdpPorts();
  const idA = await peerId(join(dir, 'a.key'));
  const idB = await peerId(join(dir, 'b.key'));
  const dataA = randomBytes(1 << 20);
  const dataB = randomBytes(1 << 20);
  // A checks B's id; B runs without --peer-id: encrypted, and told loudly whom it reached.
  const a = startPunch(t, 'a', ['--local-port', String(portA), '--peer', `127.0.0.1:${portB}`, '--key', join(dir, 'a.key'), '--peer-id', idB, '--json']);
  const b = startPunch(t, 'b', ['--local-port', String(portB), '--peer', `127.0.0.1:${portA}`, '--key', join(dir, 'b.key')]);
  const gotA = stdoutHash(a);
  const gotB = stdoutHash(b);
  a.child.stdin!.end(dataA);
  b.child.stdin!.end(dataB);
  const connected = await a.until((e) => e['event'] === 'connected', 'connected', 30_000);
  assert.equal(connected['peer'], idB);
  assert.equal(connected['path'], 'direct-udp');
  assert.equal(connected['remote'], `127.0.0.1:${portB}`);
  assert.equal(await a.exited(60_000), 0, a.stderr());
  assert.equal(await b.exited(60_000), 0, b.stderr());
  assert.deepEqual(await gotA, { sha256: sha256(dataB), bytes: dataB.length });
  assert.deepEqual(await gotB, { sha256: sha256(dataA), bytes: dataA.length });
  const closed = a.events.find((e) => e['event'] === 'closed');
  assert.equal(closed?.['sent'], 1 << 20);
  assert.equal(closed?.['received'], 1 << 20);
  assert.match(b.stderr(), new RegExp(`connected to ${idA} — direct-udp`));
  assert.match(b.stderr(), new RegExp(`WARNING: the peer was not authenticated \\(no --peer-id\\)\\. It proved to hold the id\\n\\s+${idA}`));
});

test('a --peer-id that is not who runs there is refused with ERR_NOISE on both sides', async (t) => {
  const dir = await scratch(t);
  const [portA, portB] = await freeUdpPorts();
  const idA = await peerId(join(dir, 'a.key'));
  const idB = await peerId(join(dir, 'b.key'));
  const stranger = await peerId(join(dir, 'c.key'));
  const env = { NATPUNCH_PUNCH_TIMEOUT_MS: '3000' };
  // A expects a stranger; B expects A, correctly.
  const a = startPunch(t, 'a', ['--local-port', String(portA), '--peer', `127.0.0.1:${portB}`, '--key', join(dir, 'a.key'), '--peer-id', stranger, '--json'], env);
  const b = startPunch(t, 'b', ['--local-port', String(portB), '--peer', `127.0.0.1:${portA}`, '--key', join(dir, 'b.key'), '--peer-id', idA, '--json'], env);
  a.child.stdin!.end('secret from a');
  b.child.stdin!.end('secret from b');
  assert.equal(await a.exited(30_000), 1, a.stderr());
  assert.equal(await b.exited(30_000), 1, b.stderr());
  const errorA = a.events.find((e) => e['event'] === 'error');
  const errorB = b.events.find((e) => e['event'] === 'error');
  assert.equal(errorA?.['code'], 'ERR_NOISE', a.stderr());
  assert.equal(errorB?.['code'], 'ERR_NOISE', b.stderr());
  // A refused B: its message names the id it expected and the one B proved.
  assert.match(String(errorA?.['message']), new RegExp(`${stranger}.*${idB}|${idB}.*${stranger}`));
  // B learns nothing it should not, but says which ids were in play.
  assert.match(String(errorB?.['message']), new RegExp(idB));
  assert.ok(!a.events.some((e) => e['event'] === 'connected'), 'A never reports a connection');
  assert.ok(!b.events.some((e) => e['event'] === 'connected'), 'B never reports a connection');
});

test('no answer: exit 1 with ERR_UNREACHABLE naming the address within the timeout', async (t) => {
  const dir = await scratch(t);
  const [portA, silent] = await freeUdpPorts();
  const started = performance.now();
  const a = startPunch(t, 'a', ['--local-port', String(portA), '--peer', `127.0.0.1:${silent}`, '--key', join(dir, 'a.key'), '--json'], { NATPUNCH_PUNCH_TIMEOUT_MS: '1500' });
  a.child.stdin!.end();
  assert.equal(await a.exited(20_000), 1, a.stderr());
  assert.ok(performance.now() - started < 10_000, `took ${performance.now() - started} ms`);
  const error = a.events.find((e) => e['event'] === 'error');
  assert.equal(error?.['code'], 'ERR_UNREACHABLE');
  assert.equal(error?.['message'], `no answer from 127.0.0.1:${silent} within 2 s: check the address, and that the other side runs natpunch punch with --peer pointing here (its --local-port mapped to the address it was given)`);
});

test('a port in use is ERR_LISTEN, exit 1, in one line', async (t) => {
  const dir = await scratch(t);
  const holder = dgram.createSocket('udp4');
  holder.bind(0);
  await once(holder, 'listening');
  t.after(() => holder.close());
  const port = holder.address().port;
  const result = await runCli('punch', '--local-port', String(port), '--peer', '127.0.0.1:9', '--key', join(dir, 'a.key'));
  assert.equal(result.code, 1);
  // The line saying what it tried, then the error in one line, no stack trace.
  assert.doesNotMatch(result.stderr, /\n\s+at /);
  assert.match(result.stderr.trim().split('\n').at(-1)!, new RegExp(`^natpunch punch: cannot bind UDP port ${port}: the port is in use`));
});

for (const [what, args, message] of [
  ['no --peer', ['--local-port', '4000'], /--local-port P and --peer IP:PORT are both required/],
  ['no --local-port', ['--peer', '127.0.0.1:4000'], /--local-port P and --peer IP:PORT are both required/],
  ['a host name', ['--local-port', '4000', '--peer', 'example.net:4000'], /--peer "example.net:4000": expected IP:PORT/],
  ['port 0', ['--local-port', '0', '--peer', '127.0.0.1:4000'], /--local-port "0" is not a whole number from 1 to 65535/],
  ['a bad peer id', ['--local-port', '4000', '--peer', '127.0.0.1:4000', '--peer-id', 'nope'], /--peer-id "nope" is not a peer id/],
  ['a positional', ['--local-port', '4000', '--peer', '127.0.0.1:4000', 'extra'], /unexpected argument "extra"/],
] as const) {
  test(`usage error, exit 2: ${what}`, async () => {
    const result = await runCli('punch', ...args);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, message);
  });
}

for (const c of ABORT_CASES) {
  const side = c.aborting === 'connect' ? 'the second punch' : 'the first punch';
  test(`${c.signal} on ${side} mid-transfer: the other exits 1 with ERR_PEER_ABORTED within 1 s; the interrupted one exits ${c.code}`, async (t) => {
    const dir = await scratch(t);
    const [portA, portB] = await freeUdpPorts();
    // The scenario's "listen" is the first punch (its ready event gives its id), "connect" the second.
    await abortMidTransfer(c,
      () => startPunch(t, 'punch a', ['--local-port', String(portA), '--peer', `127.0.0.1:${portB}`, '--key', join(dir, 'a.key'), '--json']),
      (id) => startPunch(t, 'punch b', ['--local-port', String(portB), '--peer', `127.0.0.1:${portA}`, '--key', join(dir, 'b.key'), '--peer-id', id, '--json']));
  });
}

test('check --local-port P runs from P: its mappedAddress is 127.0.0.1:P on loopback', async (t) => {
  const serve = await startServe(localHost, '127.0.0.1', '127.0.0.2', ['--port', '0', '--alt-port', '0', '--http-port', '0', '--no-relay']);
  t.after(() => serve.stop());
  const [port] = await freeUdpPorts();
  const result = await runCli('check', '--stun', serve.primary, '--local-port', String(port), '--json');
  assert.equal(result.code, 0, result.stderr);
  assert.equal((JSON.parse(result.stdout) as { mappedAddress: string }).mappedAddress, `127.0.0.1:${port}`);
});
