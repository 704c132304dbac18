import assert from 'node:assert/strict';
import { once } from '../support/wait.js';
import { describe, it } from 'node:test';
import { AbortedError } from '../../src/errors.js';
import { StreamResetError } from '../../src/transport/errors.js';
import { createStream } from '../../src/transport/stream-connection.js';
import { cleanUp, closed, pseudoRandomBytes, readAll, sha256, until, writeAll } from './helpers.js';
import { createLossyLink } from './lossy-link.js';

describe('stream half-close and abort', { timeout: 30_000 }, () => {
  it('lets the other side keep writing after one side ends (half-close)', async (t) => {
    const link = createLossyLink({ seed: 7, loss: 0.05 });
    const a = createStream(link.a);
    const b = createStream(link.b);
    cleanUp(t, a, b);
    const request = Buffer.from('request: please send 200 kB');
    const response = pseudoRandomBytes(200_000, 4);

    const aReads = readAll(a);
    a.end(request);
    const atB = await readAll(b);
    assert.deepEqual(atB, request);
    // b has seen 'end' but is still writable, and a still reads.
    assert.equal(b.writable, true);
    assert.equal(a.readable, true);
    const events: string[] = [];
    for (const event of ['end', 'finish', 'close']) a.once(event, () => events.push(event));
    await writeAll(b, response);
    assert.equal(sha256(await aReads), sha256(response));
    await Promise.all([closed(a), closed(b)]);
    // 'finish' (our FIN acknowledged) and 'end' (theirs received) come in either order, depending
    // on which packets the link dropped; 'close' waits for both.
    assert.deepEqual([...events].sort(), ['close', 'end', 'finish']);
    assert.equal(events.at(-1), 'close');
  });

  it("emits 'finish' only once the peer has acknowledged every byte and the FIN", async (t) => {
    const link = createLossyLink({ seed: 8, loss: 0.1 });
    const a = createStream(link.a);
    const b = createStream(link.b);
    cleanUp(t, a, b);
    const data = pseudoRandomBytes(300_000, 5);
    b.resume();
    a.end(data);
    await once(a, 'finish');
    assert.equal(a.stats.bytesAcked, data.length);
    assert.equal(a.stats.sendBuffered, 0);
    b.end();
    a.resume();
    await Promise.all([closed(a), closed(b)]);
  });

  it('delivers an empty stream as an immediate end', async (t) => {
    const link = createLossyLink({ seed: 9 });
    const a = createStream(link.a);
    const b = createStream(link.b);
    cleanUp(t, a, b);
    a.end();
    assert.equal((await readAll(b)).length, 0);
    b.end();
    a.resume();
    await Promise.all([closed(a), closed(b)]);
  });

  it('finishes when the peer acknowledged every byte, closed, and its last ACK was lost (LAST-ACK gives up)', async (t) => {
    const link = createLossyLink({ seed: 12 });
    const a = createStream(link.a);
    const b = createStream(link.b);
    cleanUp(t, a, b);
    const data = pseudoRandomBytes(50_000, 6);
    const atA = readAll(a);
    b.resume();
    b.end();
    await once(b, 'finish');
    a.write(data);
    await until(() => a.stats.bytesAcked === data.length, 'every byte acknowledged');
    // b closes as soon as a's FIN arrives (its own FIN is already acknowledged); the path dies
    // with it, as when a process exits right after its last ACK, so that ACK never reaches a.
    b.once('close', () => link.cut());
    const aErrors: Error[] = [];
    a.on('error', (error: Error) => aErrors.push(error));
    a.end();
    await closed(a);
    assert.deepEqual(aErrors, []);
    assert.equal((await atA).length, 0);
    assert.equal(a.stats.lastAckGiveUps, 1);
  });

  it('settle() keeps a gracefully closed stream answering until the peer has its last ACK', async (t) => {
    const link = createLossyLink({ seed: 13 });
    const a = createStream(link.a);
    const b = createStream(link.b);
    cleanUp(t, a, b);
    const data = pseudoRandomBytes(200_000, 7);
    const atB = readAll(b);
    b.end();
    await once(b, 'finish');
    // b's ACK of a's last data and FIN is lost; a must retransmit and hear from the lingering b.
    let probesBefore = Infinity;
    const probes = (): number => a.stats.tailLossProbes + a.stats.retransmissionTimeouts;
    b.once('close', () => {
      link.impair({ loss: 1 });
      probesBefore = probes();
    });
    const aDone = Promise.all([readAll(a), closed(a)]);
    await writeAll(a, data);
    const settled = b.settle();
    await until(() => probes() > probesBefore, 'a probing for the lost ACK');
    assert.equal(a.writableFinished, false);
    link.impair({ loss: 0 });
    await aDone;
    await settled;
    assert.equal(sha256(await atB), sha256(data));
    assert.equal(a.stats.bytesAcked, data.length);
    assert.equal(a.stats.lastAckGiveUps, 0);
  });

  it('aborts the peer with StreamResetError when one side is destroyed', async (t) => {
    const link = createLossyLink({ seed: 10 });
    const a = createStream(link.a);
    const b = createStream(link.b);
    cleanUp(t, a, b);
    a.write('some bytes');
    await once(b, 'readable');
    a.destroy();
    const [error] = (await once(b, 'error')) as [StreamResetError];
    assert.ok(error instanceof StreamResetError);
    assert.equal(error.code, 'ERR_TRANSPORT_RESET');
    assert.equal(error.resetCode, 0);
    await closed(b);
    assert.equal(a.destroyed, true);
  });

  it('aborts with AbortedError when its signal fires', async (t) => {
    const link = createLossyLink({ seed: 11 });
    const controller = new AbortController();
    const a = createStream(link.a, { signal: controller.signal });
    const b = createStream(link.b);
    cleanUp(t, a, b);
    const errored = once(a, 'error');
    const peerReset = once(b, 'error');
    controller.abort();
    const [error] = (await errored) as [AbortedError];
    assert.ok(error instanceof AbortedError);
    assert.equal(error.code, 'ERR_ABORTED');
    // The RESET reaches the peer, which had not even sent anything yet.
    const [reset] = (await peerReset) as [StreamResetError];
    assert.equal(reset.code, 'ERR_TRANSPORT_RESET');
  });
});

describe('for await on a stream', { timeout: 30_000 }, () => {
  it('reads to the peer\'s end and leaves this side writable: read the request, then answer', async (t) => {
    const link = createLossyLink({ seed: 21 });
    const a = createStream(link.a);
    const b = createStream(link.b);
    cleanUp(t, a, b);
    const answer = readAll(a);
    a.end('request');
    const chunks: Buffer[] = [];
    for await (const chunk of b) chunks.push(chunk);
    assert.equal(Buffer.concat(chunks).toString(), 'request');
    assert.equal(b.destroyed, false, 'the loop ended at the peer\'s FIN, not in an abort');
    b.end('answer');
    assert.equal((await answer).toString(), 'answer', 'the peer got the answer, not ERR_PEER_ABORTED');
    await Promise.all([closed(a), closed(b)]);
  });

  it('leaving the loop early destroys the stream, as Node\'s iterator does', async (t) => {
    const link = createLossyLink({ seed: 22 });
    const a = createStream(link.a);
    const b = createStream(link.b);
    cleanUp(t, a, b);
    a.write('first');
    for await (const chunk of b) {
      assert.equal(chunk.toString(), 'first');
      break;
    }
    assert.equal(b.destroyed, true);
    await assert.rejects(readAll(a), StreamResetError, 'the peer sees the abort');
  });
});
