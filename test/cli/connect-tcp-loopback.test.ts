import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loopbackServer, scratch, startCli } from '../support/loopback-cli.js';

/**
 * Two hosts that both take TCP connections (here: loopback) do not punch: the initiator dials
 * the other's listener. Simultaneous open between them took 6.8 s (89 connects) on loopback.
 */
test('connect --transport tcp on loopback connects in under 1 s', async (t) => {
  const server = await loopbackServer(t);
  const dir = await scratch(t);
  const listen = startCli(t, 'listen', ['listen', '--server', server, '--key', join(dir, 'l.key'), '--once', '--json']);
  const id = String((await listen.until((e) => e['event'] === 'ready', 'ready'))['id']);
  const connect = startCli(t, 'connect', ['connect', id, '--server', server, '--key', join(dir, 'c.key'), '--transport', 'tcp', '--json']);
  const connected = await connect.until((e) => e['event'] === 'connected', 'connected');
  assert.equal(connected['path'], 'direct-tcp');
  assert.ok(Number(connected['ms']) < 1000, `connected in ${connected['ms']} ms`);
  connect.child.stdin!.end('ping');
  listen.child.stdin!.end('pong');
  assert.equal(await connect.exited(20_000), 0, connect.stderr());
  assert.equal(await listen.exited(20_000), 0, listen.stderr());
});
