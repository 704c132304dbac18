import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { NatpunchError } from '../../src/errors.js';
import { DATAGRAM_OVERHEAD } from '../../src/secure/datagram-cipher.js';
import { assertNoiseError, establishedSessions, text } from './helpers.js';

describe('the datagram cipher', () => {
  it('adds 24 bytes: an 8-byte counter and a 16-byte tag', () => {
    const [a] = establishedSessions();
    assert.equal(DATAGRAM_OVERHEAD, 24);
    const packet = a.datagram.seal(new Uint8Array(1200));
    assert.equal(packet.length, 1224);
    assert.deepEqual(packet.subarray(0, 8), new Uint8Array(8));
    assert.deepEqual(a.datagram.seal(new Uint8Array(0)).subarray(0, 8), Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0));
  });

  it('delivers reordered packets, in both directions', () => {
    const [a, b] = establishedSessions();
    const packets = Array.from({ length: 20 }, (_, index) => a.datagram.seal(text(`packet ${index}`)));
    const order = [...packets.keys()].reverse();
    for (const index of order) assert.deepEqual(b.datagram.open(packets[index] as Uint8Array), text(`packet ${index}`));
    assert.deepEqual(a.datagram.open(b.datagram.seal(text('reply'))), text('reply'));
  });

  it('tolerates loss', () => {
    const [a, b] = establishedSessions();
    const packets = Array.from({ length: 10 }, (_, index) => a.datagram.seal(text(`${index}`)));
    assert.deepEqual(b.datagram.open(packets[9] as Uint8Array), text('9'));
    assert.deepEqual(b.datagram.open(packets[2] as Uint8Array), text('2'));
  });

  it('rejects a replayed packet as replayed', () => {
    const [a, b] = establishedSessions();
    const packet = a.datagram.seal(text('once'));
    b.datagram.open(packet);
    assertNoiseError(() => b.datagram.open(packet), 'replayed', /datagram 0: already received/);
  });

  it('rejects a packet older than the replay window as replayed', () => {
    const [a, b] = establishedSessions({ datagram: { replayWindow: 64 } });
    const old = a.datagram.seal(text('old'));
    let newest = old;
    for (let i = 0; i < 64; i++) newest = a.datagram.seal(text('filler'));
    b.datagram.open(newest);
    assertNoiseError(() => b.datagram.open(old), 'replayed', /older than the replay window \(64 behind, window 64\)/);
  });

  it('rejects tampering with the counter, the ciphertext or the tag as decrypt-failed', () => {
    const [a, b] = establishedSessions();
    const packet = a.datagram.seal(text('payload'));
    for (const index of [0, 5, 8, packet.length - 1]) {
      const tampered = packet.slice();
      tampered[index] = (tampered[index] as number) ^ 0x04;
      assertNoiseError(() => b.datagram.open(tampered), 'decrypt-failed', /^datagram \d+: ChaChaPoly/);
    }
    assert.deepEqual(b.datagram.open(packet), text('payload'), 'forgeries did not move the window');
  });

  it('authenticates caller-supplied associated data', () => {
    const [a, b] = establishedSessions();
    const packet = a.datagram.seal(text('payload'), text('channel 7'));
    assertNoiseError(() => b.datagram.open(packet, text('channel 8')), 'decrypt-failed');
    assert.deepEqual(b.datagram.open(packet, text('channel 7')), text('payload'));
  });

  it('rejects packets from another session and its own reflected packets', () => {
    const [a, b] = establishedSessions();
    const [c] = establishedSessions();
    assertNoiseError(() => b.datagram.open(c.datagram.seal(text('stranger'))), 'decrypt-failed');
    assertNoiseError(() => a.datagram.open(a.datagram.seal(text('reflected'))), 'decrypt-failed');
  });

  it('uses keys independent of the stream cipher', () => {
    const [a, b] = establishedSessions();
    const streamMessage = a.encrypt(text('stream'));
    const asDatagram = new Uint8Array(8 + streamMessage.length);
    asDatagram.set(streamMessage, 8);
    assertNoiseError(() => b.datagram.open(asDatagram), 'decrypt-failed');
    assert.deepEqual(b.decrypt(streamMessage), text('stream'));
  });

  it('rejects short packets and impossible counters as malformed', () => {
    const [, b] = establishedSessions();
    assertNoiseError(() => b.datagram.open(new Uint8Array(23)), 'malformed-message', /length 23, expected at least 24/);
    const huge = new Uint8Array(40).fill(0xff);
    assertNoiseError(() => b.datagram.open(huge), 'malformed-message', /beyond 2\^53/);
  });

  it('throws only NatpunchError for arbitrary bytes', () => {
    const [, b] = establishedSessions();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        try {
          b.datagram.open(bytes);
          assert.fail('random bytes authenticated');
        } catch (error) {
          assert.ok(NatpunchError.is(error), `unexpected ${String(error)}`);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips random payloads', () => {
    const [a, b] = establishedSessions();
    for (let i = 0; i < 50; i++) {
      const payload = randomBytes(i * 31);
      assert.deepEqual(b.datagram.open(a.datagram.seal(payload)), new Uint8Array(payload));
    }
  });
});
