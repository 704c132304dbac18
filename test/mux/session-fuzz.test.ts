import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeFrame, FrameType, MuxError, MuxSession, type MuxStream } from '../../src/mux/index.js';

/** A connection whose incoming bytes the test pushes; what the session writes is dropped. */
function fakeConnection(): Duplex {
  return new Duplex({ read() {}, write(_chunk, _encoding, callback) { callback(); } });
}

describe('mux session fuzz', () => {
  it('arbitrary bytes after a valid OPEN never throw out of the session: at most a protocol error closes it', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 400 }), { maxLength: 6 }), fc.boolean(), async (chunks, initiator) => {
      const connection = fakeConnection();
      connection.on('error', () => undefined);
      const session = new MuxSession(connection, { initiator });
      session.on('stream', (stream: MuxStream) => { stream.on('error', () => undefined); stream.resume(); });
      let closedWith: unknown = 'open';
      session.on('close', (error: unknown) => { closedWith = error; });
      connection.push(encodeFrame({ type: FrameType.Open, streamId: initiator ? 2 : 1, target: 'x' }));
      for (const chunk of chunks) connection.push(chunk);
      await new Promise((resolve) => setImmediate(resolve));
      assert.ok(closedWith === 'open' || closedWith instanceof MuxError, String(closedWith));
      connection.destroy();
    }), { numRuns: 500 });
  });
});
