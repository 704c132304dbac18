import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { StunServer } from '../../src/stun/server.js';
import { PeerAddressPolicy, TurnClient, TurnServer, openUdpTransport } from '../../src/turn/index.js';
import { udpReceiveAvailable } from '../../src/punch/udp-receive.js';
import { within } from '../support/wait.js';

/**
 * The relay's data plane with batched reads and sends (decision 009) and without them: a burst of
 * ChannelData from a client reaches the peer, and the peer's burst reaches the client, every
 * datagram intact and in order, whether the server reads through native/udp-batch (views of a
 * reused slab, headers written into its headroom, one sendmmsg per batch) or node:dgram.
 */

const COUNT = 2000;

function payload(direction: number, seq: number): Buffer {
  const bytes = Buffer.alloc(20 + ((seq * 37) % 1180), (seq + direction) & 0xff);
  bytes.writeUInt32BE(direction, 0);
  bytes.writeUInt32BE(seq, 4);
  return bytes;
}

async function until(what: string, done: () => boolean, seen: () => string): Promise<void> {
  await within((async () => { while (!done()) await new Promise((r) => setTimeout(r, 2)); })(), what, { seen });
}

async function relay(t: TestContext, native: boolean): Promise<{ turn: TurnServer; address: { family: 4; address: string; port: number } }> {
  const turn = new TurnServer({
    relayAddress: '127.0.0.1', realm: 'natpunch.test', users: new Map([['alice', 'wonderland']]), native,
    policy: new PeerAddressPolicy({ allow: ['127.0.0.0/8'], serverAddresses: ['127.0.0.1'] }),
  });
  const stun = await StunServer.listen({ address: '127.0.0.1', port: 0, shared: turn, native });
  t.after(async () => {
    await turn.close();
    await stun.close();
  });
  return { turn, address: stun.addresses[0]! as { family: 4; address: string; port: number } };
}

for (const native of [true, false]) {
  describe(`the TURN relay ${native ? 'with batched reads and sends' : 'through node:dgram (native: false)'}`, () => {
    it(`relays ${COUNT} ChannelData datagrams each way, intact and in order`, { timeout: 60_000 }, async (t) => {
      if (native && !udpReceiveAvailable().ok) return t.skip((udpReceiveAvailable() as { reason: string }).reason);
      const { turn, address } = await relay(t, native);
      const peer = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
      peer.bind(0, '127.0.0.2');
      await once(peer, 'listening');
      t.after(() => peer.close());
      const atPeer: Buffer[] = [];
      peer.on('message', (message) => atPeer.push(message));
      const client = new TurnClient(await openUdpTransport(address, { localAddress: '127.0.0.1' }));
      t.after(() => client.close());
      const atClient: Buffer[] = [];
      client.on('data', (_from, data: Uint8Array) => atClient.push(Buffer.from(data)));
      const allocation = await client.allocate({ username: 'alice', password: 'wonderland' });
      const peerAddress = { family: 4 as const, address: '127.0.0.2', port: peer.address().port };
      await client.bindChannel(peerAddress);
      for (let seq = 0; seq < COUNT; seq++) {
        client.send(peerAddress, payload(0, seq));
        if (seq % 200 === 199) await until('the step at the peer', () => atPeer.length === seq + 1, () => `${atPeer.length}`);
      }
      for (let seq = 0; seq < COUNT; seq++) {
        peer.send(payload(1, seq), allocation.relayed.port, allocation.relayed.address);
        if (seq % 50 === 49) await until('the step at the client', () => atClient.length === seq + 1, () => `${atClient.length}`);
      }
      atPeer.forEach((data, seq) => assert.deepEqual(data, payload(0, seq), `client → peer ${seq}`));
      atClient.forEach((data, seq) => assert.deepEqual(data, payload(1, seq), `peer → client ${seq}`));
      assert.equal(turn.stats.packetsRelayed, 2 * COUNT);
      assert.equal(turn.stats.packetsDropped, 0);
    });
  });
}
