import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { describe, it, type TestContext } from 'node:test';
import { EARLY_FRAMES, UDP_PATH_HEADER_LENGTH, UDP_PATH_PAYLOAD, UdpEndpoint } from '../../src/path/udp-endpoint.js';
import { DATA_PACKET_TYPE, UdpMux } from '../../src/punch/udp-mux.js';
import type { TransportAddress } from '../../src/wire/index.js';

const PEER: TransportAddress = { family: 4, address: '198.51.100.1', port: 5000 };
const OTHER: TransportAddress = { family: 4, address: '198.51.100.2', port: 6000 };

/** A mux on an unbound socket: datagrams are emitted by hand, and sends are recorded, not made. */
function handFedMux(t: TestContext): { mux: UdpMux; receive(data: Uint8Array, from: TransportAddress): void; sent: Array<{ data: Uint8Array; to: TransportAddress }> } {
  const socket = createSocket('udp4');
  t.after(() => socket.close());
  const mux = new UdpMux(socket, false);
  const sent: Array<{ data: Uint8Array; to: TransportAddress }> = [];
  mux.send = (data, to) => { sent.push({ data: Uint8Array.from(data), to }); };
  return {
    mux, sent,
    receive: (data, from) => { socket.emit('message', Buffer.from(data), { address: from.address, family: 'IPv4', port: from.port, size: data.length }); },
  };
}

const packet = (id: Uint8Array, ...frame: number[]): Uint8Array => Uint8Array.of(DATA_PACKET_TYPE, ...id, ...frame);

describe('a connection\'s share of the UDP socket (UdpEndpoint)', () => {
  it('derives its connection id from the rendezvous session id', (t) => {
    const { mux } = handFedMux(t);
    const endpoint = new UdpEndpoint(mux, 'session-1');
    assert.deepEqual(endpoint.connectionId, createHash('sha256').update('session-1').digest().subarray(0, 4));
  });

  it('hands frames to the path of their source, and others to onUnknownSource, leaving other connections\' datagrams alone', (t) => {
    const { mux, receive } = handFedMux(t);
    const mine = new UdpEndpoint(mux, 'mine');
    const theirs = new UdpEndpoint(mux, 'theirs');
    const path = mine.pathTo(PEER, 'udp-hole-punch');
    const onPath: number[][] = [];
    const unknown: Array<{ frame: number[]; from: TransportAddress }> = [];
    const theirsUnknown: number[][] = [];
    path.onDatagram((frame) => onPath.push([...frame]));
    mine.onUnknownSource((frame, from) => unknown.push({ frame: [...frame], from }));
    theirs.onUnknownSource((frame) => theirsUnknown.push([...frame]));
    receive(packet(mine.connectionId, 1, 2), PEER);
    receive(packet(mine.connectionId, 3), OTHER);
    receive(packet(theirs.connectionId, 4), PEER);
    receive(packet(mine.connectionId), PEER);
    assert.deepEqual(onPath, [[1, 2]]);
    assert.deepEqual(unknown, [{ frame: [3], from: OTHER }]);
    assert.deepEqual(theirsUnknown, [[4]]);
  });

  it(`keeps up to ${EARLY_FRAMES} frames that come before their path or its handler, and hands them over once both exist`, async (t) => {
    const { mux, receive } = handFedMux(t);
    const endpoint = new UdpEndpoint(mux, 'early');
    // The handshake's first message, right behind the nominating check: no path to PEER yet.
    for (let i = 1; i <= EARLY_FRAMES + 2; i++) receive(packet(endpoint.connectionId, i), PEER);
    receive(packet(endpoint.connectionId, 99), OTHER);
    const path = endpoint.pathTo(PEER, 'udp-hole-punch');
    receive(packet(endpoint.connectionId, 50), PEER); // on the path, still before any handler
    const got: number[][] = [];
    path.onDatagram((frame) => got.push([...frame]));
    assert.deepEqual(got, [], 'handed over after the subscriber has finished subscribing');
    await new Promise<void>((resolve) => queueMicrotask(resolve));
    // The endpoint kept the newest EARLY_FRAMES of all sources (4, 5, 6 and OTHER's 99), the path
    // those from PEER and then the one that came before its handler.
    assert.deepEqual(got, [[4], [5], [6], [50]]);
    // Once someone handles unknown sources (the path manager), nothing more is kept.
    const unknown: number[][] = [];
    endpoint.onUnknownSource((frame) => unknown.push([...frame]));
    receive(packet(endpoint.connectionId, 7), OTHER);
    assert.deepEqual(unknown, [[7]]);
    const other = endpoint.pathTo(OTHER, 'udp-hole-punch');
    const late: number[][] = [];
    other.onDatagram((frame) => late.push([...frame]));
    await new Promise<void>((resolve) => queueMicrotask(resolve));
    assert.deepEqual(late, [], 'the frame from OTHER kept earlier went with onUnknownSource');
  });

  it('gives the same path for the same address until it is closed', (t) => {
    const { mux } = handFedMux(t);
    const endpoint = new UdpEndpoint(mux, 's');
    const path = endpoint.pathTo(PEER, 'a');
    assert.equal(endpoint.pathTo({ ...PEER }, 'b'), path);
    path.close();
    assert.equal(path.open, false);
    assert.notEqual(endpoint.pathTo(PEER, 'c'), path);
  });

  it('puts the type byte and connection id in front of each frame, in the headroom it asks for', (t) => {
    const { mux, sent } = handFedMux(t);
    const endpoint = new UdpEndpoint(mux, 's');
    const path = endpoint.pathTo(PEER, 'udp-hole-punch');
    assert.equal(path.headroom, UDP_PATH_HEADER_LENGTH);
    assert.equal(path.maxPayload, UDP_PATH_PAYLOAD - UDP_PATH_HEADER_LENGTH);
    assert.equal(path.remote, '198.51.100.1:5000');
    path.send(Uint8Array.of(9, 8));
    const buffer = new Uint8Array(UDP_PATH_HEADER_LENGTH + 1);
    buffer[UDP_PATH_HEADER_LENGTH] = 7;
    path.sendWithHeadroom(buffer);
    assert.deepEqual(sent, [
      { data: packet(endpoint.connectionId, 9, 8), to: PEER },
      { data: packet(endpoint.connectionId, 7), to: PEER },
    ]);
    assert.equal(path.sendBatch, undefined, 'no batching without the addon');
    path.close();
    path.send(Uint8Array.of(1));
    assert.equal(sent.length, 2, 'a closed path sends nothing');
  });

  it('stops claiming datagrams and closes its paths when closed', (t) => {
    const { mux, receive } = handFedMux(t);
    const endpoint = new UdpEndpoint(mux, 's');
    const path = endpoint.pathTo(PEER, 'x');
    let delivered = 0;
    path.onDatagram(() => delivered++);
    endpoint.onUnknownSource(() => delivered++);
    endpoint.close();
    receive(packet(endpoint.connectionId, 1), PEER);
    receive(packet(endpoint.connectionId, 1), OTHER);
    assert.equal(delivered, 0);
    assert.equal(path.open, false);
  });
});
