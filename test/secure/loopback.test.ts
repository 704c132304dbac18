/**
 * The handshake and both ciphers over real sockets on the loopback interface: a TCP stream
 * with length-prefixed framing, and UDP datagrams.
 */
import assert from 'node:assert/strict';
import { once, within } from '../support/wait.js';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { generateIdentity } from '../../src/identity/identity.js';
import { encodeFrame, FrameDecoder } from '../../src/secure/framing.js';
import { NatpunchHandshake } from '../../src/secure/natpunch-handshake.js';
import type { SecureSession } from '../../src/secure/secure-session.js';

const TIMEOUT = 20_000;

/** Framed messages over a TCP socket: send one, or await the next one in order. */
class FramedChannel {
  readonly #socket: Socket;
  readonly #decoder = new FrameDecoder();
  readonly #ready: Uint8Array[] = [];
  readonly #waiting: Array<(message: Uint8Array) => void> = [];

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      for (const message of this.#decoder.push(chunk)) {
        const waiter = this.#waiting.shift();
        if (waiter) waiter(message);
        else this.#ready.push(message);
      }
    });
  }

  send(message: Uint8Array): void {
    this.#socket.write(encodeFrame(message));
  }

  receive(): Promise<Uint8Array> {
    const message = this.#ready.shift();
    return message ? Promise.resolve(message) : within(new Promise((resolve) => this.#waiting.push(resolve)), 'the next handshake frame');
  }
}

/** Runs one side of the handshake over a framed stream. */
async function handshake(channel: FramedChannel, side: NatpunchHandshake): Promise<SecureSession> {
  while (!side.complete) {
    const out = side.write();
    if (out) channel.send(out);
    else side.read(await channel.receive());
  }
  return side.session();
}

describe('over loopback sockets', () => {
  it('a TCP stream carries the handshake and encrypted messages both ways', { timeout: TIMEOUT }, async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    try {
      const accepted = once(server, 'connection') as Promise<[Socket]>;
      const client = connect(port, '127.0.0.1');
      const [serverSide] = await accepted;
      const clientChannel = new FramedChannel(client);
      const serverChannel = new FramedChannel(serverSide);
      const [clientSession, serverSession] = await Promise.all([
        handshake(
          clientChannel,
          new NatpunchHandshake({
            identity: alice,
            initiator: true,
            expectedPeerId: bob.peerId,
            prologue: Buffer.from('tcp'),
          }),
        ),
        handshake(
          serverChannel,
          new NatpunchHandshake({ identity: bob, initiator: false, prologue: Buffer.from('tcp') }),
        ),
      ]);
      assert.equal(serverSession.remotePeerId, alice.peerId);
      for (let i = 0; i < 5; i++) clientChannel.send(clientSession.encrypt(Buffer.from(`ping ${i}`)));
      for (let i = 0; i < 5; i++) {
        const ping = serverSession.decrypt(await serverChannel.receive());
        assert.equal(Buffer.from(ping).toString(), `ping ${i}`);
        serverChannel.send(serverSession.encrypt(Buffer.from(`pong ${i}`)));
      }
      for (let i = 0; i < 5; i++)
        assert.equal(Buffer.from(clientSession.decrypt(await clientChannel.receive())).toString(), `pong ${i}`);
      client.destroy();
      serverSide.destroy();
    } finally {
      server.close();
    }
  });

  it('UDP datagrams carry the handshake and sealed packets', { timeout: TIMEOUT }, async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const sockets: UdpSocket[] = [createSocket('udp4'), createSocket('udp4')];
    try {
      await Promise.all(sockets.map((socket) => new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))));
      const [a, b] = sockets as [UdpSocket, UdpSocket];
      a.connect(b.address().port, '127.0.0.1');
      b.connect(a.address().port, '127.0.0.1');
      await Promise.all([once(a, 'connect'), once(b, 'connect')]);
      const initiator = new NatpunchHandshake({ identity: alice, initiator: true, expectedPeerId: bob.peerId });
      const responder = new NatpunchHandshake({ identity: bob, initiator: false });
      const done = new Promise<void>((resolve, reject) => {
        const pump = (socket: UdpSocket, side: NatpunchHandshake) => (message: Buffer) => {
          try {
            side.read(message);
            const out = side.write();
            if (out) socket.send(out);
            if (initiator.complete && responder.complete) resolve();
          } catch (error) {
            reject(error);
          }
        };
        a.on('message', pump(a, initiator));
        b.on('message', pump(b, responder));
      });
      a.send(initiator.write() as Uint8Array);
      await within(done, 'the handshake over UDP to complete on both sides');
      a.removeAllListeners('message');
      b.removeAllListeners('message');

      const received: string[] = [];
      const count = 50;
      const all = new Promise<void>((resolve) => {
        b.on('message', (packet: Buffer) => {
          received.push(Buffer.from(responder.session().datagram.open(packet)).toString());
          if (received.length === count) resolve();
        });
      });
      for (let i = 0; i < count; i++) a.send(initiator.session().datagram.seal(Buffer.from(`datagram ${i}`)));
      await within(all, `${count} sealed datagrams`, { seen: () => `${received.length}` });
      assert.deepEqual(new Set(received), new Set(Array.from({ length: count }, (_, i) => `datagram ${i}`)));
    } finally {
      for (const socket of sockets) socket.close();
    }
  });
});
