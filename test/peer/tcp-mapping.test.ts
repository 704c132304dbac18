import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once, until } from '../support/wait.js';
import { StunServer } from '../../src/stun/server.js';
import { IDLE_CLOSES_TO_ABANDON, TcpMapping } from '../../src/peer/tcp-mapping.js';
import type { TransportAddress } from '../../src/wire/index.js';

test('a kept STUN/TCP connection the server closes is reopened from a new port L, with the new mapping', async () => {
  // The server drops idle TCP connections after 200 ms: the mapping dies with it.
  const server = await StunServer.listen({ address: '127.0.0.1', port: 0, tcpIdleTimeoutMs: 200 });
  const mapping = await TcpMapping.learn(server.addresses[0]!, { localAddress: '127.0.0.1', reopen: { minDelayMs: 10 } });
  try {
    const first = mapping.localPort;
    assert.equal(mapping.mapped.port, first);
    const [reopened] = await once(mapping, 'reopened') as [{ localPort: number; mapped: TransportAddress }];
    assert.notEqual(reopened.localPort, first);
    assert.equal(mapping.localPort, reopened.localPort);
    assert.deepEqual(mapping.mapped, reopened.mapped);
    assert.equal(mapping.mapped.port, reopened.localPort, 'no NAT on loopback: the mapping is L itself');
    assert.equal(mapping.alive, true);
  } finally {
    mapping.close();
    await server.close();
  }
});

test('while the server is away, reopening retries with growing delays and succeeds once it is back', async () => {
  const server = await StunServer.listen({ address: '127.0.0.1', port: 0 });
  const address = server.addresses[0]!;
  const mapping = await TcpMapping.learn(address, { localAddress: '127.0.0.1', reopen: { minDelayMs: 20, maxDelayMs: 100 } });
  let again: StunServer | undefined;
  try {
    const closed = once(mapping, 'reopened');
    await server.close(); // a server restart: the connection ends, the first reconnects are refused
    await until(() => !mapping.alive, 'the kept connection to die', { intervalMs: 10 });
    again = await StunServer.listen({ address: '127.0.0.1', port: address.port });
    const [reopened] = await closed as [{ localPort: number }];
    assert.equal(mapping.alive, true);
    assert.equal(mapping.localPort, reopened.localPort);
  } finally {
    mapping.close();
    await again?.close();
  }
});

test('close() stops reopening, and reopen: false leaves a dead connection dead', async () => {
  const server = await StunServer.listen({ address: '127.0.0.1', port: 0, tcpIdleTimeoutMs: 100 });
  const mapping = await TcpMapping.learn(server.addresses[0]!, { localAddress: '127.0.0.1', reopen: false });
  try {
    let reopened = false;
    mapping.on('reopened', () => { reopened = true; });
    await until(() => !mapping.alive, 'the kept connection to die', { intervalMs: 10 });
    // An observation window for something that must not happen, longer than any reopen delay
    // would be (not a synchronisation: nothing is awaited).
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(reopened, false);
    assert.equal(mapping.alive, false);
  } finally {
    mapping.close();
    await server.close();
  }
});

test('kept connections the server keeps closing while idle are given up after IDLE_CLOSES_TO_ABANDON in a row', async () => {
  const server = await StunServer.listen({ address: '127.0.0.1', port: 0, tcpIdleTimeoutMs: 100 });
  const mapping = await TcpMapping.learn(server.addresses[0]!, { localAddress: '127.0.0.1', reopen: { minDelayMs: 10 } });
  try {
    let reopens = 0;
    mapping.on('reopened', () => { reopens += 1; });
    const [abandoned] = await once(mapping, 'abandoned') as [{ idleCloses: number }];
    assert.equal(abandoned.idleCloses, IDLE_CLOSES_TO_ABANDON);
    assert.equal(reopens, IDLE_CLOSES_TO_ABANDON - 1);
    assert.equal(mapping.abandoned, true);
    assert.equal(mapping.alive, false);
    assert.ok(mapping.localPort > 0, 'L is still known after its connection closed');
  } finally {
    mapping.close();
    await server.close();
  }
});

test('a connection that carried a keepalive before it closed does not count toward giving up', async () => {
  const server = await StunServer.listen({ address: '127.0.0.1', port: 0, tcpIdleTimeoutMs: 150 });
  const mapping = await TcpMapping.learn(server.addresses[0]!, { localAddress: '127.0.0.1', reopen: { minDelayMs: 10 } });
  try {
    // Each reopened connection gets one keepalive, then is left to close while idle.
    mapping.on('reopened', () => void mapping.keepalive().catch(() => undefined));
    await mapping.keepalive();
    let reopens = 0;
    mapping.on('reopened', () => { reopens += 1; });
    await until(() => reopens >= 3, 'three reopens', { seen: () => `${reopens}, abandoned: ${mapping.abandoned}` });
    assert.equal(mapping.abandoned, false);
  } finally {
    mapping.close();
    await server.close();
  }
});
