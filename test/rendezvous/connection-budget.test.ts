/**
 * Issue 11 finding 6: connections that never register, from a few addresses, must not lock
 * registrations out. Loopback has all of 127.0.0.0/8, so "a few addresses" are 127.0.0.2-5.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import type { RendezvousLimits } from '../../src/rendezvous/index.js';
import { within } from '../support/wait.js';
import { RawClient, Resources, registerRaw, startServers, until } from './helpers.js';

const resources = new Resources();
afterEach(() => resources.close());

/** Opens a WebSocket from `localAddress`: 'open' (it got in, hello read) or the upgrade's failure. */
async function attempt(url: string, localAddress: string): Promise<'open' | string> {
  const ws = new WebSocket(url, { localAddress });
  resources.add(ws, (w) => w.terminate());
  // Not events.once: waiting for 'message' would reject on 'error'.
  return within(new Promise<string>((resolve) => {
    ws.once('message', () => resolve('open'));
    ws.once('error', (error) => resolve(error.message));
  }), `a WebSocket from ${localAddress} opening or failing`);
}

test('64 silent connections from 4 addresses do not lock a registration out', async () => {
  // Limits scaled down from the defaults; the attack holds every connection it gets.
  const limits = { maxConnections: 64, maxConnectionsPerAddress: 16, maxUnregistered: 32, maxUnregisteredPerAddress: 8 } as Partial<RendezvousLimits>;
  const { url, server } = await startServers(resources, { limits });
  const outcomes = new Map<string, number>();
  for (const address of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']) {
    for (let i = 0; i < 16; i++) {
      const outcome = await attempt(url, address);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
  }
  // At most maxUnregisteredPerAddress from each address got in; the rest were refused at the upgrade.
  assert.equal(outcomes.get('open'), 32, JSON.stringify([...outcomes]));
  assert.equal(server.stats.connections, 32);
  // A legitimate peer from another address still registers: the oldest silent connection of the
  // address holding most makes room (the budget for unregistered sockets is full).
  const { raw } = await registerRaw(resources, url, undefined, { localAddress: '127.0.0.1' });
  assert.equal(raw.ws.readyState, WebSocket.OPEN);
  assert.equal(server.stats.peers, 1);
  assert.ok(server.stats.connections <= 33);
});

test('a silent connection evicted for a newcomer is told why', async () => {
  const limits = { maxUnregistered: 2, maxUnregisteredPerAddress: 2 } as Partial<RendezvousLimits>;
  const { url, server } = await startServers(resources, { limits });
  const first = await RawClient.open(resources, url, { localAddress: '127.0.0.2' });
  assert.equal((await first.next()).type, 'hello');
  const second = await RawClient.open(resources, url, { localAddress: '127.0.0.2' });
  assert.equal((await second.next()).type, 'hello');
  // A third from the same address: it already holds its share, so it is refused, not evicting.
  assert.match(await attempt(url, '127.0.0.2'), /503/);
  await registerRaw(resources, url, undefined, { localAddress: '127.0.0.3' });
  const evicted = await first.next();
  assert.equal(evicted['code'], 'server-full');
  assert.match(String(evicted['message']), /waiting to register/);
  assert.equal(await first.closed, 1013);
  await until(() => server.stats.connections === 2, 'the evicted socket is gone');
});

test('registered peers are not counted against the unregistered budget', async () => {
  const limits = { maxUnregistered: 1, maxUnregisteredPerAddress: 1 } as Partial<RendezvousLimits>;
  const { url, server } = await startServers(resources, { limits });
  for (let i = 0; i < 5; i++) await registerRaw(resources, url);
  assert.equal(server.stats.peers, 5);
});
