import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from '../support/wait.js';
import { StunStreamConnection } from '../../src/stun/stream-connection.js';

// Relayed data for a TCP TURN client that does not read is dropped past maxBufferedBytes, as a
// full UDP buffer would drop it, instead of growing the server without bound.
test('output for a client that does not read is dropped once maxBufferedBytes wait', async () => {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  client.pause();
  const [accepted] = (await once(server, 'connection')) as [net.Socket];
  const MAX = 256 * 1024;
  const connection = new StunStreamConnection(accepted, { maxFrame: 2048, idleTimeoutMs: 60_000, frameTimeoutMs: 60_000, highWaterMark: 1024, maxBufferedBytes: MAX }, {
    frame: () => undefined, garbage: () => undefined, progress: () => undefined, frameTimeout: () => undefined, paused: () => undefined,
  });
  const datagram = Buffer.alloc(1200);
  let written = 0;
  let dropped = 0;
  // 64 MiB offered: far more than kernel buffers and the cap together.
  for (let i = 0; i < 56_000; i++) {
    if (connection.write(datagram)) written++;
    else dropped++;
  }
  assert.ok(accepted.writableLength <= MAX, `${accepted.writableLength} bytes queued, cap ${MAX}`);
  assert.ok(dropped > 0 && written * datagram.length < 64 << 20, `${written} written, ${dropped} dropped`);
  client.destroy();
  accepted.destroy();
  server.close();
});
