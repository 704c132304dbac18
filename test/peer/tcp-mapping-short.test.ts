import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from '../support/wait.js';
import { StunServer } from '../../src/stun/server.js';
import { learnShortTcpMapping } from '../../src/peer/tcp-mapping-short.js';
import { NatpunchError } from '../../src/errors.js';

test('a short STUN/TCP connection reports L\'s mapping, closes, and L can be connected from at once', async () => {
  const server = await StunServer.listen({ address: '127.0.0.1', port: 0 });
  const peer = net.createServer();
  peer.listen(0, '127.0.0.1');
  await once(peer, 'listening');
  try {
    const short = await learnShortTcpMapping(server.addresses[0]!, { localAddress: '127.0.0.1' });
    assert.equal(short.mapped.address, '127.0.0.1');
    assert.equal(short.mapped.port, short.localPort, 'no NAT on loopback: the mapping is L itself');
    // The punch's connect from L (the short connection is closing or in TIME-WAIT on another 4-tuple).
    const accepted = once(peer, 'connection') as Promise<[net.Socket]>;
    const socket = net.connect({ host: '127.0.0.1', port: (peer.address() as net.AddressInfo).port, localAddress: '127.0.0.1', localPort: short.localPort });
    await once(socket, 'connect');
    const [inbound] = await accepted;
    assert.equal(inbound.remotePort, short.localPort);
    inbound.destroy();
    socket.destroy();
  } finally {
    peer.close();
    await server.close();
  }
});

test('each short mapping comes from a new port L', async () => {
  const server = await StunServer.listen({ address: '127.0.0.1', port: 0 });
  try {
    const first = await learnShortTcpMapping(server.addresses[0]!, { localAddress: '127.0.0.1' });
    const second = await learnShortTcpMapping(server.addresses[0]!, { localAddress: '127.0.0.1' });
    assert.notEqual(first.localPort, second.localPort);
  } finally {
    await server.close();
  }
});

test('a server that is not there fails with a NatpunchError, and quickly', async () => {
  const server = await StunServer.listen({ address: '127.0.0.1', port: 0 });
  const address = server.addresses[0]!;
  await server.close();
  await assert.rejects(learnShortTcpMapping(address, { localAddress: '127.0.0.1', timeoutMs: 1_000 }), (error: Error) => {
    assert.ok(error instanceof NatpunchError);
    assert.equal(error.code, 'ERR_STUN_CLOSED');
    assert.match(error.message, /STUN over TCP: connect to 127\.0\.0\.1:\d+/);
    return true;
  });
});
