/**
 * Fuzzing the path layer (STYLE §11): random and mutated frames on a PathManager's paths, from
 * known and unknown addresses, and random byte streams through TcpRawPath's parser. Nothing may
 * throw, nothing unauthentic may reach the stream or create a path, and the parser must hand out
 * exactly the frames the bytes spell.
 *
 * Deterministic: FUZZ_SEED (default fixed) seeds fast-check; FUZZ_RUNS scales it for a longer
 * scheduled run. A failing case prints its seed and path for fast-check to replay.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FrameKind, InnerType, encodeProbe } from '../../src/path/frame.js';
import { TcpRawPath } from '../../src/path/tcp-path.js';
import { UdpEndpoint } from '../../src/path/udp-endpoint.js';
import { DATA_PACKET_TYPE, UdpMux } from '../../src/punch/udp-mux.js';
import { lengthPrefixed, rawLink } from './links.js';
import { connectedManagers, sealedFrame } from './sessions.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 0x9a7b);
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 1000);
const options = { seed: SEED, numRuns: RUNS };

/** A net.Socket stand-in that the test feeds 'data' by hand. */
function fakeSocket(): Socket & EventEmitter {
  return Object.assign(new EventEmitter(), {
    remoteAddress: '::ffff:192.0.2.7', remotePort: 4242, writableLength: 0, destroyed: false,
    setNoDelay: () => undefined, write: () => true, end: () => undefined, destroy: () => undefined, cork: () => undefined, uncork: () => undefined,
  }) as unknown as Socket & EventEmitter;
}


/** `bytes` cut at `cuts` (positions, any order, duplicates allowed). */
function chunked(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((x, y) => x - y);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const to of [...at, bytes.length]) {
    if (to > from) chunks.push(bytes.subarray(from, to));
    from = to;
  }
  return chunks;
}

describe('fuzzing the path layer', { timeout: 120_000 }, () => {
  it('TcpRawPath hands out exactly the non-empty frames written, however the bytes are chunked', () => {
    fc.assert(fc.property(
      fc.array(fc.uint8Array({ maxLength: 1500 }), { maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      (frames, cuts) => {
        const socket = fakeSocket();
        const path = new TcpRawPath(socket, { technique: 'fuzz' });
        const got: string[] = [];
        path.onDatagram((frame) => got.push(Buffer.from(frame).toString('hex')));
        for (const chunk of chunked(lengthPrefixed(frames), cuts)) socket.emit('data', chunk);
        assert.deepEqual(got, frames.filter((f) => f.length > 0).map((f) => Buffer.from(f).toString('hex')));
      },
    ), options);
  });

  it('TcpRawPath parses random bytes into frames that re-encode to a prefix of them, never throwing', () => {
    fc.assert(fc.property(
      fc.uint8Array({ maxLength: 4000 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      (bytes, cuts) => {
        const socket = fakeSocket();
        const path = new TcpRawPath(socket, { technique: 'fuzz' });
        const got: Uint8Array[] = [];
        path.onDatagram((frame) => got.push(Uint8Array.from(frame)));
        const input = Buffer.from(bytes);
        for (const chunk of chunked(input, cuts)) socket.emit('data', chunk);
        // Only the empty frames were skipped: re-encode with them by walking the input.
        let at = 0;
        let index = 0;
        while (input.length - at >= 2 && input.length - at - 2 >= input.readUInt16BE(at)) {
          const length = input.readUInt16BE(at);
          if (length > 0) assert.deepEqual(got[index++], Uint8Array.from(input.subarray(at + 2, at + 2 + length)));
          at += 2 + length;
        }
        assert.equal(index, got.length, 'no frame beyond what the bytes spell');
      },
    ), options);
  });

  it('a PathManager drops random and mutated frames on its paths and from unknown addresses: nothing throws, nothing reaches the stream, no path is made', async (t) => {
    const link = rawLink({ seed: 301, name: 'fuzz' });
    // A UDP endpoint fed by hand: datagrams are emitted on an unbound socket, never sent.
    const socket = createSocket('udp4');
    t.after(() => socket.close());
    const mux = new UdpMux(socket, false);
    const udp = new UdpEndpoint(mux, 'fuzz-session');
    const ends = await connectedManagers(t, link, { a: { udp } });
    const a = ends.a;
    let punches = 0;
    a.on('punch', () => punches++);
    const genuine = [
      sealedFrame(ends.sessions.b, encodeProbe(InnerType.PathChallenge, new Uint8Array(8))),
      sealedFrame(ends.sessions.b, Uint8Array.of(InnerType.Punch, 1, 2, 3)),
      sealedFrame(ends.sessions.b, Uint8Array.of(InnerType.Stream, 1, 0, 0, ...new Uint8Array(20))),
    ];
    const frame = fc.oneof(
      fc.uint8Array({ maxLength: 1300 }),
      fc.uint8Array({ maxLength: 1300 }).map((rest) => Uint8Array.of(FrameKind.Sealed, ...rest)),
      fc.tuple(fc.constantFrom(...genuine), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }))
        .map(([original, flips]) => {
          const mutated = original.slice();
          for (const [at, mask] of flips) mutated[at % mutated.length] ^= mask;
          // Flips that cancel out would give the genuine frame back.
          if (Buffer.compare(mutated, original) === 0) mutated[mutated.length - 1] ^= 0x01;
          return mutated;
        }),
    );
    const stats = a.stream.stats;
    const before = { packetsReceived: stats.packetsReceived, datagramsDropped: stats.datagramsDropped };
    let sentOnPath = 0;
    const send = link.a.send.bind(link.a);
    link.a.send = (f) => { if (f[0] === FrameKind.Sealed) sentOnPath++; send(f); };
    fc.assert(fc.property(frame, fc.boolean(), fc.integer({ min: 1, max: 65535 }), (bytes, fromUnknown, port) => {
      if (fromUnknown) {
        const data = Buffer.concat([Uint8Array.of(DATA_PACKET_TYPE), udp.connectionId, bytes]);
        socket.emit('message', data, { address: '198.51.100.9', family: 'IPv4', port, size: data.length });
      } else {
        link.a.inject(bytes);
      }
    }), options);
    const after = a.stream.stats;
    assert.deepEqual({ packetsReceived: after.packetsReceived, datagramsDropped: after.datagramsDropped }, before, 'nothing reached the stream');
    assert.equal(punches, 0);
    assert.equal(a.paths.length, 1, 'no path made');
    assert.equal(sentOnPath, 0, 'nothing answered');
    assert.ok(a.dropped > 0);
  });
});
