/**
 * SecureStream over natpunch's stream transport: once the Noise handshake is done, the
 * transport honours only RESETs carrying the session's token, so a RESET forged by someone who
 * sees the UDP 5-tuple no longer ends the connection.
 */
import assert from 'node:assert/strict';
import { once } from '../support/wait.js';
import { describe, it } from 'node:test';
import { generateIdentity } from '../../src/identity/identity.js';
import { SecureStream } from '../../src/peer/secure-stream.js';
import { PacketType, encodePacket } from '../../src/transport/packet.js';
import { createStream } from '../../src/transport/stream-connection.js';
import { StreamResetError } from '../../src/transport/errors.js';
import { createLossyLink } from '../transport/lossy-link.js';

describe('SecureStream over the stream transport', { timeout: 30_000 }, () => {
  it('authenticates RESETs with the session: a forged one is dropped, the peer\'s own still ends the stream', async () => {
    const link = createLossyLink({ seed: 71 });
    const rawA = createStream(link.a);
    const rawB = createStream(link.b);
    const alice = generateIdentity();
    const bob = generateIdentity();
    const [secureA, secureB] = await Promise.all([
      SecureStream.establish(rawA, { identity: alice, initiator: true, expectedPeerId: bob.peerId }),
      SecureStream.establish(rawB, { identity: bob, initiator: false }),
    ]);
    link.a.send(encodePacket({ type: PacketType.Reset, packetNumber: 0, maxStreamData: 0, ack: undefined, resetCode: 1 }));
    const echoed = once(secureB, 'data');
    secureA.write('still here');
    assert.equal(String((await echoed)[0]), 'still here');
    assert.equal(rawB.stats.datagramsDropped >= 1, true);
    assert.equal(secureB.destroyed, false);

    const failed = once(secureB, 'error');
    secureA.destroy();
    const [error] = await failed;
    assert.ok(error instanceof StreamResetError);
  });
});
