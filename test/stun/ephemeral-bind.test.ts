/**
 * Port 0: the server binds UDP on an ephemeral port, then TCP on the same number. That number may
 * already be taken over TCP (another program's listener, an outgoing connection); the server then
 * starts again on another port instead of failing, and leaves no socket of the failed try behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import dgram from 'node:dgram';
import { once } from '../support/wait.js';
import { StunServer } from '../../src/stun/server.js';
import { StunUdpClient } from '../../src/stun/udp-client.js';
import { realTcpNet, type TcpNet } from '../../src/tcp-net.js';

/** node:net, but the first TCP listen finds its port already held by a real listener of ours. */
function firstPortTaken(blockers: net.Server[], taken: number[]): TcpNet {
  let first = true;
  return {
    connect: realTcpNet.connect,
    createServer(options, listener) {
      const server = realTcpNet.createServer(options, listener);
      if (!first) return server;
      first = false;
      const listen = server.listen.bind(server) as (port: number, host: string) => net.Server;
      (server as { listen: unknown }).listen = (port: number, host: string): net.Server => {
        const blocker = net.createServer();
        blockers.push(blocker);
        blocker.listen(port, host, () => {
          taken.push(port);
          listen(port, host);
        });
        return server;
      };
      return server;
    },
  };
}

test('port 0: an ephemeral port already taken over TCP is given up for another, with nothing leaked', async () => {
  const blockers: net.Server[] = [];
  const taken: number[] = [];
  const server = await StunServer.listen({ address: '127.0.0.1', port: 0, net: firstPortTaken(blockers, taken) });
  try {
    assert.equal(taken.length, 1, 'the first TCP listen met a port already held');
    const [bound] = server.addresses;
    assert.notEqual(bound!.port, taken[0], 'the server moved to another port');
    // The UDP socket of the failed try was closed: its port can be bound again.
    const again = dgram.createSocket('udp4');
    again.bind(taken[0], '127.0.0.1');
    await once(again, 'listening');
    again.close();
    // And the server answers on its new port.
    const socket = dgram.createSocket('udp4');
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    const client = new StunUdpClient(socket);
    try {
      const { from } = await client.request(bound!);
      assert.deepEqual(from, bound);
    } finally {
      client.close();
    }
  } finally {
    await server.close();
    for (const blocker of blockers) blocker.close();
  }
});

test('a fixed port taken over TCP fails at once (EADDRINUSE) and frees its UDP socket', async () => {
  const blocker = net.createServer();
  blocker.listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  const { port } = blocker.address() as net.AddressInfo;
  try {
    await assert.rejects(StunServer.listen({ address: '127.0.0.1', port }), { code: 'EADDRINUSE' });
    // Its UDP socket was freed too.
    const again = dgram.createSocket('udp4');
    again.bind(port, '127.0.0.1');
    await once(again, 'listening');
    again.close();
  } finally {
    blocker.close();
  }
});
