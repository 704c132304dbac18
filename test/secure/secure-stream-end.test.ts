/**
 * SecureStream and the end of the carrier: the initiator may end at once, so its last handshake
 * message and its end arrive together (`natpunch connect` with an empty stdin does this); and an
 * end that does not follow the peer's sealed close message is a truncation, not an end.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { once } from '../support/wait.js';
import { Duplex } from 'node:stream';
import { describe, it } from 'node:test';
import { generateIdentity } from '../../src/identity/identity.js';
import { SecureStream } from '../../src/peer/secure-stream.js';
import { readAll } from '../support/streams.js';

const TIMEOUT = 20_000;

/** A carrier whose writes go to `onWrite` and whose readable side the test feeds by hand. */
class Carrier extends Duplex {
  readonly written = new EventEmitter();
  ended = false;

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.written.emit('chunk', chunk);
    callback();
  }

  override _final(callback: () => void): void {
    this.ended = true;
    this.written.emit('end');
    callback();
  }

  override _read(): void {}
}

describe('SecureStream.establish', () => {
  it('completes when the last handshake message and the end arrive in the same turn', { timeout: TIMEOUT }, async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const toBob = new Carrier();
    const toAlice = new Carrier();
    // Bob's messages reach Alice at once; Alice's are held so the test decides when Bob sees them.
    toAlice.written.on('chunk', (chunk: Buffer) => toBob.push(chunk));
    const fromAlice: Buffer[] = [];
    toBob.written.on('chunk', (chunk: Buffer) => fromAlice.push(chunk));

    const message1 = once(toBob.written, 'chunk');
    const initiator = SecureStream.establish(toBob, { identity: alice, initiator: true, expectedPeerId: bob.peerId });
    const responder = SecureStream.establish(toAlice, { identity: bob, initiator: false });
    await message1;
    toAlice.push(fromAlice.shift());

    const secureAlice = await initiator;
    const aliceEnded = once(toBob.written, 'end');
    secureAlice.end();
    await aliceEnded;
    // Message 3 and the end of Alice's stream, delivered together from one I/O callback, as the
    // transport delivers a datagram holding both: 'end' then comes before promise continuations.
    setImmediate(() => {
      toAlice.push(Buffer.concat(fromAlice.splice(0)));
      toAlice.push(null);
    });

    const secureBob = await responder;
    assert.equal(secureBob.remotePeerId, alice.peerId);
    assert.equal((await readAll(secureBob)).length, 0);
  });

  it('fails with ERR_NOISE when the carrier ends without the sealed close message (a forged FIN)', { timeout: TIMEOUT }, async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const toBob = new Carrier();
    const toAlice = new Carrier();
    toAlice.written.on('chunk', (chunk: Buffer) => toBob.push(chunk));
    toBob.written.on('chunk', (chunk: Buffer) => toAlice.push(chunk));
    const [secureAlice, secureBob] = await Promise.all([
      SecureStream.establish(toBob, { identity: alice, initiator: true, expectedPeerId: bob.peerId }),
      SecureStream.establish(toAlice, { identity: bob, initiator: false }),
    ]);
    const received = once(secureBob, 'data');
    secureAlice.write('the first half');
    assert.equal(String((await received)[0]), 'the first half');
    // An attacker ends Bob's carrier at a frame boundary; Alice never ended.
    const failed = once(secureBob, 'error');
    toAlice.push(null);
    const [error] = await failed;
    assert.equal((error as { code?: string }).code, 'ERR_NOISE');
    assert.match((error as Error).message, /ended without its sealed close message/);
    secureAlice.destroy();
  });

  it('still fails with ERR_NOISE when the stream ends before the handshake completes', { timeout: TIMEOUT }, async () => {
    const toAlice = new Carrier();
    const responder = SecureStream.establish(toAlice, { identity: generateIdentity(), initiator: false });
    toAlice.push(null);
    await assert.rejects(responder, (error: Error & { code?: string }) => {
      assert.equal(error.code, 'ERR_NOISE');
      assert.match(error.message, /closed the stream mid-handshake/);
      return true;
    });
  });
});
