import assert from 'node:assert/strict';
import { once } from '../support/wait.js';
import { describe, it } from 'node:test';
import { StreamResetError, TransportError } from '../../src/transport/errors.js';
import { PacketType, decodePacket, encodePacket } from '../../src/transport/packet.js';
import { createStream } from '../../src/transport/stream-connection.js';
import { cleanUp, until } from './helpers.js';
import { createLossyLink } from './lossy-link.js';

const tokenA = new Uint8Array(16).fill(0xa1);
const tokenB = new Uint8Array(16).fill(0xb2);

function forgedReset(resetToken?: Uint8Array): Uint8Array {
  return encodePacket({ type: PacketType.Reset, packetNumber: 0, maxStreamData: 0, ack: undefined, resetCode: 7, resetToken });
}

describe('RESET authentication with session tokens', { timeout: 30_000 }, () => {
  it('drops a RESET without the token, or with a wrong one, and honours the peer\'s own', async (t) => {
    const link = createLossyLink({ seed: 61 });
    const sentByA: Uint8Array[] = [];
    const a = createStream({ ...link.a, send: (datagram) => { sentByA.push(datagram); link.a.send(datagram); } });
    const b = createStream(link.b);
    cleanUp(t, a, b);
    a.authenticateResets({ send: tokenA, receive: tokenB });
    b.authenticateResets({ send: tokenB, receive: tokenA });

    // An attacker on the path injects RESETs toward b, as if from a.
    link.a.send(forgedReset());
    link.a.send(forgedReset(tokenB));
    await until(() => b.stats.datagramsDropped === 2, 'b to drop both forged RESETs');
    assert.equal(b.destroyed, false);

    const failed = once(b, 'error');
    a.destroy();
    const [error] = await failed;
    assert.ok(error instanceof StreamResetError);
    const reset = sentByA.map((datagram) => decodePacket(datagram)).find((packet) => packet.type === PacketType.Reset);
    assert.ok(reset?.type === PacketType.Reset);
    assert.deepEqual(Uint8Array.from(reset.resetToken!), tokenA);
  });

  it('honours any RESET before tokens are set, as the handshake that derives them runs over the stream', async (t) => {
    const link = createLossyLink({ seed: 62 });
    const b = createStream(link.b);
    cleanUp(t, b);
    const failed = once(b, 'error');
    link.a.send(forgedReset());
    const [error] = await failed;
    assert.ok(error instanceof StreamResetError);
  });

  it('refuses tokens that are not 16 bytes', () => {
    const link = createLossyLink({ seed: 63 });
    const a = createStream(link.a);
    assert.throws(() => a.authenticateResets({ send: new Uint8Array(15), receive: tokenB }), (error: unknown) => {
      assert.ok(error instanceof TransportError);
      assert.match(error.message, /send reset token of 15 bytes, expected 16/);
      return true;
    });
    a.destroy();
  });
});
