import assert from 'node:assert/strict';
import { type Socket, createSocket } from 'node:dgram';
import { once } from '../support/wait.js';
import { after, before, describe, it } from 'node:test';
import { TransportError } from '../../src/transport/errors.js';
import { createStream } from '../../src/transport/stream-connection.js';
import { createUdpPath } from '../../src/transport/udp-path.js';
import { cleanUp, closed, pseudoRandomBytes, readAll, sha256, writeAll } from './helpers.js';

async function bind(): Promise<Socket> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return socket;
}

describe('stream over real UDP on 127.0.0.1', { timeout: 30_000 }, () => {
  let left: Socket;
  let right: Socket;
  before(async () => {
    left = await bind();
    right = await bind();
  });
  after(() => {
    left.close();
    right.close();
  });

  it('carries 1 MiB each way between two dgram sockets and leaves other datagrams to other listeners', async (t) => {
    const toRight = createUdpPath(left, { address: '127.0.0.1', port: right.address().port });
    const toLeft = createUdpPath(right, { address: '127.0.0.1', port: left.address().port });
    const a = createStream(toRight);
    const b = createStream(toLeft);
    cleanUp(t, a, b);

    // A STUN Binding request on the same socket: the stream ignores it, another listener gets it.
    const stun = Buffer.from('000100002112a442b7e7a701bc34d686fa87dfae', 'hex');
    const otherListener = once(right, 'message');
    left.send(stun, right.address().port, '127.0.0.1');
    const [message] = (await otherListener) as [Buffer];
    assert.deepEqual(message, stun);

    const fromA = pseudoRandomBytes(1024 * 1024, 10);
    const fromB = pseudoRandomBytes(1024 * 1024, 11);
    const [atB, atA] = await Promise.all([readAll(b), readAll(a), writeAll(a, fromA), writeAll(b, fromB)]);
    assert.equal(sha256(atB), sha256(fromA));
    assert.equal(sha256(atA), sha256(fromB));
    assert.equal(b.stats.datagramsDropped, 0, 'the STUN message never reached the stream');
    await Promise.all([closed(a), closed(b)]);
    toRight.close();
    toLeft.close();
    assert.equal(right.listenerCount('message'), 0, 'close() removes only the path listener');
  });

  it('rejects a remote that is not an IP address and port with TransportError', () => {
    assert.throws(
      () => createUdpPath(left, { address: 'localhost', port: 1 }),
      (error: unknown) => error instanceof TransportError && error.code === 'ERR_TRANSPORT' && /expected an IP address/.test(error.message),
    );
  });
});
