import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { join } from 'node:path';
import { generateIdentity } from '../../src/identity/index.js';
import { RendezvousClient } from '../../src/rendezvous/client.js';
import { once } from '../support/wait.js';
import { loopbackServer, scratch, startCli } from '../support/loopback-cli.js';

/** What `listen` does with several peers, and with one that fails (issue 10). */
test('listen without --once serves connections one at a time, in turn: stdout gets each in order, stdin goes to the first', async (t) => {
  const server = await loopbackServer(t);
  const dir = await scratch(t);
  const listen = startCli(t, 'listen', ['listen', '--server', server, '--key', join(dir, 'l.key'), '--json']);
  const id = String((await listen.until((e) => e['event'] === 'ready', 'ready'))['id']);
  listen.child.stdin!.end('to the first');
  for (const [n, text] of [[1, 'from one;'], [2, 'from two;']] as const) {
    const connect = startCli(t, `connect ${n}`, ['connect', id, '--server', server, '--key', join(dir, `c${n}.key`), '--json']);
    connect.child.stdin!.end(text);
    assert.equal(await connect.exited(20_000), 0, connect.stderr());
    // The first gets stdin; later ones get an empty stream (this side half-closes at once).
    assert.equal(connect.received(), n === 1 ? 'to the first'.length : 0);
    await listen.until((e) => e['event'] === 'closed' && listen.events.filter((x) => x['event'] === 'closed').length === n, `closed #${n}`);
  }
  assert.equal(listen.received(), 'from one;from two;'.length);
  assert.equal(listen.child.exitCode, null, 'still listening');
  listen.child.kill('SIGTERM');
  assert.equal(await listen.exited(10_000), 143);
});

test('listen --once exits 1 with the error when the one incoming attempt fails, instead of waiting forever', async (t) => {
  const server = await loopbackServer(t);
  const dir = await scratch(t);
  const listen = startCli(t, 'listen', ['listen', '--server', server, '--key', join(dir, 'l.key'), '--once', '--json']);
  const id = String((await listen.until((e) => e['event'] === 'ready', 'ready'))['id']);
  // An initiator that signs an intent and then answers nothing: the listener's attempt fails.
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  let open = true;
  t.after(() => { if (open) socket.close(); });
  const client = await RendezvousClient.connect({ url: server, identity: generateIdentity(), udpSocket: socket, privateEndpoints: [`127.0.0.1:${socket.address().port}`] });
  t.after(() => client.close());
  await client.connect(id, { transport: 'udp' });
  socket.close();
  open = false;
  assert.equal(await listen.exited(60_000), 1, listen.stderr());
  const error = listen.events.find((e) => e['event'] === 'error');
  assert.ok(error && typeof error['code'] === 'string' && error['code'] !== 'ERR_UNEXPECTED', listen.stderr());
});
