import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once, until } from '../support/wait.js';
import { type KeepaliveState, MappingKeepalive, intervalFromLifetime } from '../../src/peer/keepalive.js';
import { StunUdpClient } from '../../src/stun/udp-client.js';
import { AttrType, MessageClass, Method, decodeMessage, encodeMessage, xorMappedAddress } from '../../src/wire/index.js';

test('the interval is 0.8 × the longest surviving idle, at least 1 s; a death speaks before the end, survivals only at the end', () => {
  const table: [Parameters<typeof intervalFromLifetime>[0], number | null][] = [
    [null, null],
    [{ aliveSeconds: 2, expiredSeconds: null, final: false }, null],
    [{ aliveSeconds: 64, expiredSeconds: null, final: true }, 51_200],
    [{ aliveSeconds: null, expiredSeconds: null, final: true }, null],
    [{ aliveSeconds: 4, expiredSeconds: 8, final: true }, 3_200],
    [{ aliveSeconds: 16, expiredSeconds: 32, final: false }, 12_800],
    [{ aliveSeconds: null, expiredSeconds: 8, final: false }, 3_200],
    [{ aliveSeconds: null, expiredSeconds: 2, final: true }, 1_000],
  ];
  for (const [lifetime, expected] of table) assert.equal(intervalFromLifetime(lifetime), expected, JSON.stringify(lifetime));
});

/** A STUN server that reports whatever port `mappedPort` says: a NAT that moves the mapping on demand. */
async function movingServer(): Promise<{ socket: dgram.Socket; port: number; mappedPort: number; requests: number }> {
  const socket = dgram.createSocket('udp4');
  const state = { socket, port: 0, mappedPort: 40_000, requests: 0 };
  socket.on('message', (data, from) => {
    const request = decodeMessage(data);
    state.requests++;
    socket.send(encodeMessage({
      method: Method.Binding, messageClass: MessageClass.SuccessResponse, transactionId: request.transactionId,
      attributes: [{ type: AttrType.XorMappedAddress, value: xorMappedAddress.encode({ family: 4, address: '127.0.0.1', port: state.mappedPort }, request.transactionId) }],
    }), from.port, from.address);
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  state.port = socket.address().port;
  return state;
}

async function client(): Promise<{ socket: dgram.Socket; stun: StunUdpClient }> {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return { socket, stun: new StunUdpClient(socket) };
}

test('a keepalive that sees the mapping moved caps the interval at half the idle time and moves the registration', async () => {
  const server = await movingServer();
  const { socket, stun } = await client();
  let registered = '127.0.0.1:40000';
  const moves: string[] = [];
  const keepalive = new MappingKeepalive({
    stun, server: { family: 4, address: '127.0.0.1', port: server.port }, mapped: registered, defaultIntervalMs: 400, minIntervalMs: 10,
    maxSeconds: 1, // no measurement probes: this test is about the reaction
    registered: () => registered,
    onMappingChanged: async (mapped) => { moves.push(mapped); registered = mapped; },
  });
  try {
    assert.deepEqual(keepalive.state, { intervalMs: 400, lifetime: null, reason: 'default' });
    server.mappedPort = 40_001; // the mapping died since registration; the next keepalive makes a new one
    const changed = once(keepalive, 'change');
    keepalive.start();
    const [state] = await changed as [KeepaliveState];
    assert.equal(state.reason, 'mapping-changed');
    assert.ok(state.intervalMs >= 190 && state.intervalMs <= 220, `interval ${state.intervalMs} ms, expected about half of 400`);
    await until(() => moves.length > 0, 'onMappingChanged to be called');
    assert.deepEqual(moves, ['127.0.0.1:40001']);
    // The next keepalives see the same mapping: no more moves, no more halving.
    const before = server.requests;
    await until(() => server.requests >= before + 2, 'two more keepalives', { seen: () => `${server.requests - before}` });
    assert.deepEqual(moves, ['127.0.0.1:40001']);
    assert.equal(keepalive.state.intervalMs, state.intervalMs);
  } finally {
    keepalive.close();
    stun.close();
    socket.close();
    server.socket.close();
  }
});

test('a pinned keepalive keeps its interval when the mapping moves, but still moves the registration', async () => {
  const server = await movingServer();
  const { socket, stun } = await client();
  let registered = '127.0.0.1:40000';
  const keepalive = new MappingKeepalive({
    stun, server: { family: 4, address: '127.0.0.1', port: server.port }, mapped: registered, defaultIntervalMs: 100, sizing: false,
    registered: () => registered, onMappingChanged: async (mapped) => { registered = mapped; },
  });
  const changes: KeepaliveState[] = [];
  keepalive.on('change', (state) => changes.push(state));
  try {
    server.mappedPort = 40_002;
    keepalive.start();
    await until(() => registered.endsWith(':40002'), 'the registration to move to :40002', { seen: () => registered });
    assert.deepEqual(keepalive.state, { intervalMs: 100, lifetime: null, reason: 'pinned' });
    assert.deepEqual(changes, []);
  } finally {
    keepalive.close();
    stun.close();
    socket.close();
    server.socket.close();
  }
});
