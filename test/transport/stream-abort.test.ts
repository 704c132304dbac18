import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AbortedError } from '../../src/errors.js';
import { PeerAbortedError, StreamResetError } from '../../src/transport/errors.js';
import { PacketType, ResetCode, decodePacket } from '../../src/transport/packet.js';
import { RESET_COPIES, createStream } from '../../src/transport/stream-connection.js';
import { once } from '../support/wait.js';
import { cleanUp } from './helpers.js';
import { createLossyLink } from './lossy-link.js';

describe('connection.abort(): an abort the peer sees at once', { timeout: 30_000 }, () => {
  it('the peer gets PeerAbortedError (ERR_PEER_ABORTED); this side an AbortedError with the reason', async (t) => {
    const link = createLossyLink({ seed: 71 });
    const a = createStream(link.a);
    const b = createStream(link.b);
    cleanUp(t, a, b);
    a.write('partial');
    const [local, remote] = [once(a, 'error'), once(b, 'error')];
    a.abort('interrupted (SIGINT)');
    const [[mine], [theirs]] = await Promise.all([local, remote]);
    assert.ok(mine instanceof AbortedError);
    assert.equal(mine.message, 'interrupted (SIGINT)');
    assert.ok(theirs instanceof PeerAbortedError);
    assert.equal(theirs.code, 'ERR_PEER_ABORTED');
    assert.match(theirs.message, /the peer aborted the connection; what was received before it is incomplete/);
  });

  it(`sends the RESET ${RESET_COPIES} times, so the last copy gets through when the others are lost; settle() waits for it`, async (t) => {
    const link = createLossyLink({ seed: 72 });
    const resets: number[] = [];
    let dropped = 0;
    const a = createStream({
      ...link.a,
      send: (datagram) => {
        const packet = decodePacket(datagram);
        if (packet.type === PacketType.Reset) {
          resets.push(packet.resetCode);
          // The path loses every copy but the last.
          if (dropped < RESET_COPIES - 1) { dropped++; return; }
        }
        link.a.send(datagram);
      },
    });
    const b = createStream(link.b);
    cleanUp(t, a, b);
    a.on('error', () => undefined);
    const remote = once(b, 'error');
    a.abort();
    await a.settle();
    assert.deepEqual(resets, Array(RESET_COPIES).fill(ResetCode.Aborted));
    const [theirs] = await remote;
    assert.ok(theirs instanceof PeerAbortedError);
  });

  it('destroy(error) still resets with code Error: the peer sees a failure, not an abort', async (t) => {
    const link = createLossyLink({ seed: 73 });
    const a = createStream(link.a);
    const b = createStream(link.b);
    cleanUp(t, a, b);
    a.on('error', () => undefined);
    const remote = once(b, 'error');
    a.destroy(new Error('boom'));
    const [theirs] = await remote;
    assert.ok(theirs instanceof StreamResetError);
    assert.equal(theirs.resetCode, ResetCode.Error);
  });
});
