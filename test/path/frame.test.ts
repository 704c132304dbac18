import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CHALLENGE_LENGTH, FrameKind, HANDSHAKE_HEADER_LENGTH, InnerType, SEALED_AD, SEALED_HEADER_LENGTH, SEALED_OVERHEAD,
  encodeHandshakeFrame, encodeProbe,
} from '../../src/path/frame.js';
import { DATAGRAM_OVERHEAD } from '../../src/secure/index.js';
import { STREAM_PACKET_MARKER } from '../../src/transport/packet.js';

describe('frames on a path', () => {
  it('lays a HANDSHAKE frame out as kind, message index, message', () => {
    const frame = encodeHandshakeFrame(2, Uint8Array.of(0xaa, 0xbb));
    assert.deepEqual(frame, Uint8Array.of(FrameKind.Handshake, 2, 0xaa, 0xbb));
    assert.equal(HANDSHAKE_HEADER_LENGTH, 2);
  });

  it('adds 25 bytes to a sealed inner frame: the kind byte, an 8-byte counter and a 16-byte tag', () => {
    assert.equal(SEALED_HEADER_LENGTH, 1);
    assert.equal(DATAGRAM_OVERHEAD, 24);
    assert.equal(SEALED_OVERHEAD, 25);
    assert.deepEqual(SEALED_AD, Uint8Array.of(FrameKind.Sealed));
  });

  it('lays a probe out as its type and the 8 bytes of challenge data', () => {
    const data = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    assert.deepEqual(encodeProbe(InnerType.PathChallenge, data), Uint8Array.of(0x10, 1, 2, 3, 4, 5, 6, 7, 8));
    assert.deepEqual(encodeProbe(InnerType.PathResponse, data), Uint8Array.of(0x11, 1, 2, 3, 4, 5, 6, 7, 8));
  });

  it('takes only the first 8 bytes of longer challenge data', () => {
    const probe = encodeProbe(InnerType.PathChallenge, new Uint8Array(20).fill(9));
    assert.equal(probe.length, 1 + CHALLENGE_LENGTH);
  });

  it('gives every inner type its own first byte, the stream packet keeping its marker', () => {
    assert.equal(InnerType.Stream, STREAM_PACKET_MARKER);
    const types = Object.values(InnerType);
    assert.equal(new Set(types).size, types.length);
    assert.deepEqual(Object.values(FrameKind), [0x01, 0x02]);
  });
});
