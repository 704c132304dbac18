import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TransportError } from '../../src/transport/errors.js';
import { PacketType } from '../../src/transport/packet.js';
import { RESET_COPIES, createStream } from '../../src/transport/stream-connection.js';
import { FakeClock } from './fake-clock.js';
import { ManualPeer } from './manual-peer.js';

function isTransportError(pattern: RegExp): (error: unknown) => boolean {
  return (error) => error instanceof TransportError && error.code === 'ERR_TRANSPORT' && pattern.test(error.message);
}

describe('stream options', () => {
  it('rejects a receive window below the initial credit with TransportError', () => {
    const peer = new ManualPeer();
    assert.throws(() => createStream(peer.path, { receiveWindow: 1000 }), isTransportError(/receiveWindow 1000, expected a number >= 16384/));
  });

  it('rejects an RTO ceiling below its floor with TransportError', () => {
    const peer = new ManualPeer();
    assert.throws(() => createStream(peer.path, { minRto: 500, maxRto: 100 }), isTransportError(/maxRto 100, expected a number >= 500/));
  });

  it('rejects a path whose datagrams cannot hold a packet with TransportError', () => {
    const peer = new ManualPeer(40);
    assert.throws(() => createStream(peer.path), isTransportError(/maxPayload 40, expected an integer >= 64/));
  });

  it('answers a stray packet with RESET while lingering after an abort, then closes the path when closePath is set', () => {
    const clock = new FakeClock();
    const peer = new ManualPeer();
    let pathClosed = false;
    const path = { ...peer.path, close: () => (pathClosed = true) };
    const stream = createStream(path, { clock, closePath: true, lingerTime: 5000 });
    stream.on('error', () => {});
    stream.destroy();
    assert.equal(peer.sent.at(-1)!.type, PacketType.Reset);
    clock.advance(1000);
    assert.equal(peer.sent.length, RESET_COPIES, 'the RESET goes out RESET_COPIES times');
    clock.advance(1000);
    peer.deliver({ type: PacketType.Ping, packetNumber: 3, maxStreamData: 1 << 20, ack: undefined });
    assert.equal(peer.sent.length, RESET_COPIES + 1);
    assert.equal(peer.sent.at(-1)!.type, PacketType.Reset, 'a peer that missed the RESET is told again');
    assert.equal(pathClosed, false);
    clock.advance(3000);
    assert.equal(pathClosed, true);
    peer.deliver({ type: PacketType.Ping, packetNumber: 4, maxStreamData: 1 << 20, ack: undefined });
    assert.equal(peer.sent.length, RESET_COPIES + 1, 'silent after lingering');
  });
});
