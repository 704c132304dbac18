/**
 * The path manager on real UDP sockets on loopback (UdpMux + UdpEndpoint), with side B behind a
 * small NAT (udp-forwarder.ts) that can move B to a new outside port.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { once } from '../support/wait.js';
import { describe, it, type TestContext } from 'node:test';
import { InnerType } from '../../src/path/frame.js';
import { AMPLIFICATION_FACTOR, MAX_VALIDATION_PROBES, VALIDATION_PROBE_MS } from '../../src/path/path-manager.js';
import { UdpEndpoint } from '../../src/path/udp-endpoint.js';
import { DATA_PACKET_TYPE, UdpMux } from '../../src/punch/udp-mux.js';
import { formatAddress, type TransportAddress } from '../../src/wire/index.js';
import { establishedSessions } from '../secure/helpers.js';
import { until } from '../transport/helpers.js';
import { MiB, connectedManagers, sealedFrame, transferBothWays, type Ends } from './sessions.js';
import { createForwarder, type Forwarder } from './udp-forwarder.js';

const SESSION = 'rebinding-test-session';

async function boundSocket(t: TestContext): Promise<Socket> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  t.after(() => socket.close());
  return socket;
}

const addressOf = (socket: Socket): TransportAddress => ({ family: 4, address: '127.0.0.1', port: socket.address().port });

interface UdpEnds extends Ends {
  nat: Forwarder;
  socketA: Socket;
  muxA: UdpMux;
  udpA: UdpEndpoint;
}

/** A on its own socket; B on another, reaching A through the forwarder; handshaken, managers built. */
async function udpEnds(t: TestContext): Promise<UdpEnds> {
  const socketA = await boundSocket(t);
  const socketB = await boundSocket(t);
  const muxA = new UdpMux(socketA, false);
  const muxB = new UdpMux(socketB, false);
  const udpA = new UdpEndpoint(muxA, SESSION);
  const udpB = new UdpEndpoint(muxB, SESSION);
  const nat = await createForwarder(addressOf(socketB), addressOf(socketA));
  t.after(() => {
    udpA.close();
    udpB.close();
    nat.close();
  });
  const first = { a: udpA.pathTo(nat.outside, 'udp-hole-punch'), b: udpB.pathTo(nat.inside, 'udp-hole-punch') };
  const ends = await connectedManagers(t, first, { a: { udp: udpA }, b: { udp: udpB } });
  return { ...ends, nat, socketA, muxA, udpA };
}

/** A UDP datagram carrying `frame` for the connection, as UdpRawPath puts it on the wire. */
function datagram(udp: UdpEndpoint, frame: Uint8Array): Buffer {
  return Buffer.concat([Uint8Array.of(DATA_PACKET_TYPE), udp.connectionId, frame]);
}


/** Counts the bytes `socket` receives. */
function counted(socket: Socket): { bytes: number; datagrams: number } {
  const count = { bytes: 0, datagrams: 0 };
  socket.on('message', (data) => { count.bytes += data.length; count.datagrams++; });
  return count;
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('the path manager on UDP', { timeout: 120_000 }, () => {
  it('follows the peer to its new address when its NAT rebinds it mid-transfer, 2 MiB each way intact', async (t) => {
    const ends = await udpEnds(t);
    const oldOutside = formatAddress(ends.nat.outside);
    // What A sends to, and receives from, each address while its path there is not validated.
    const unvalidated = { sent: 0, received: 0 };
    const validated = (remote: string): boolean => ends.a.paths.some((p) => p.remote === remote && p.validated);
    const send = ends.muxA.send.bind(ends.muxA);
    ends.muxA.send = (data, to) => {
      if (!validated(formatAddress(to))) unvalidated.sent += data.length;
      send(data, to);
    };
    ends.socketA.on('message', (data, from) => {
      if (!validated(`127.0.0.1:${from.port}`)) unvalidated.received += data.length;
    });
    await transferBothWays(ends, 2 * MiB, async () => {
      await until(() => ends.b.stream.stats.bytesReceived >= MiB / 2 && ends.a.stream.stats.bytesReceived >= MiB / 2, 'half a MiB each way');
      await ends.nat.rebind();
    });
    const newOutside = formatAddress(ends.nat.outside);
    assert.notEqual(newOutside, oldOutside);
    assert.deepEqual(ends.events.a.map(({ path, technique, remote, reason }) => ({ path, technique, remote, reason })),
      [{ path: 'direct-udp', technique: 'rebinding', remote: newOutside, reason: 'rebinding' }]);
    assert.deepEqual(ends.events.b, [], 'nothing changed for B: it still sends to its NAT');
    assert.equal(ends.a.active.remote, newOutside);
    assert.ok(unvalidated.sent > 0, 'A probed the new address');
    assert.ok(unvalidated.sent <= AMPLIFICATION_FACTOR * unvalidated.received, `sent ${unvalidated.sent}, received ${unvalidated.received}`);
  });

  it('sends a new address that never answers at most 3 times the bytes it brought, then gives it up', async (t) => {
    const ends = await udpEnds(t);
    const attacker = await boundSocket(t);
    const received = counted(attacker);
    const target = addressOf(ends.socketA);
    let sent = 0;
    const deliver = (frame: Uint8Array): void => {
      const packet = datagram(ends.udpA, frame);
      sent += packet.length;
      attacker.send(packet, target.port, target.address);
    };
    // Genuine frames of B's, held back and replayed from the attacker's address first.
    deliver(sealedFrame(ends.sessions.b, Uint8Array.of(InnerType.Punch)));
    await until(() => ends.a.paths.length === 2, 'a path to the new address');
    for (let i = 0; i < 3; i++) {
      await delay(VALIDATION_PROBE_MS);
      deliver(sealedFrame(ends.sessions.b, Uint8Array.of(InnerType.Punch, ...randomBytes(i * 100))));
      assert.ok(received.bytes <= AMPLIFICATION_FACTOR * sent, `received ${received.bytes}, sent ${sent}`);
    }
    await until(() => ends.a.paths.length === 1, 'the unanswered path given up', (MAX_VALIDATION_PROBES + 2) * VALIDATION_PROBE_MS + 1_000);
    await delay(100);
    assert.ok(received.datagrams > 0, 'the new address was probed');
    assert.ok(received.bytes <= AMPLIFICATION_FACTOR * sent, `received ${received.bytes}, sent ${sent}`);
    assert.deepEqual(ends.events.a, [], 'the stream never moved there');
  });

  it('creates no path for frames from an unknown address that are not authentic, and answers none', async (t) => {
    const ends = await udpEnds(t);
    const attacker = await boundSocket(t);
    const received = counted(attacker);
    const target = addressOf(ends.socketA);
    const [stranger] = establishedSessions();
    const frames = [
      ...Array.from({ length: 30 }, (_, i) => randomBytes(1 + i * 40)),
      ...Array.from({ length: 10 }, (_, i) => Uint8Array.of(0x02, ...randomBytes(i * 30))),
      sealedFrame(stranger, Uint8Array.of(InnerType.PathChallenge, ...randomBytes(8))),
    ];
    for (const frame of frames) attacker.send(datagram(ends.udpA, frame), target.port, target.address);
    await until(() => ends.a.dropped >= frames.filter((f) => f[0] !== 0x01).length, 'every forged frame dropped', 5_000);
    await delay(2 * VALIDATION_PROBE_MS);
    assert.equal(ends.a.paths.length, 1);
    assert.equal(received.datagrams, 0);
    assert.equal(ends.a.stream.stats.packetsReceived, 0);
  });
});
