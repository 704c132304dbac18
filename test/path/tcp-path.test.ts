import assert from 'node:assert/strict';
import { once } from '../support/wait.js';
import { createServer, connect, type Socket } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { TcpRawPath, TCP_PATH_PAYLOAD } from '../../src/path/tcp-path.js';
import { TransportError } from '../../src/transport/errors.js';
import { pseudoRandomBytes, until } from '../transport/helpers.js';
import { seededRandom } from '../transport/lossy-link.js';
import { lengthPrefixed } from './links.js';

/** Two ends of a loopback TCP connection, destroyed when the test ends. */
async function tcpPair(t: TestContext): Promise<[Socket, Socket]> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect(port, '127.0.0.1');
  await once(client, 'connect');
  const [serverSide] = await accepted;
  server.close();
  t.after(() => {
    client.destroy();
    serverSide.destroy();
  });
  return [client, serverSide];
}


function collect(path: TcpRawPath): Uint8Array[] {
  const frames: Uint8Array[] = [];
  path.onDatagram((frame) => frames.push(Uint8Array.from(frame)));
  return frames;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('a TCP connection as a path (TcpRawPath)', { timeout: 30_000 }, () => {
  it('delivers frames whole however TCP splits and coalesces them', async (t) => {
    const [writer, reader] = await tcpPair(t);
    const path = new TcpRawPath(reader, { technique: 'test' });
    const got = collect(path);
    const random = seededRandom(42);
    const frames = Array.from({ length: 200 }, (_, i) => pseudoRandomBytes(1 + Math.floor(random() * TCP_PATH_PAYLOAD), i));
    const wire = lengthPrefixed(frames);
    // Chunks of 1 to 3000 bytes: length prefixes split in two, frames split, several per chunk.
    for (let at = 0; at < wire.length;) {
      const size = 1 + Math.floor(random() * (random() < 0.3 ? 3 : 3000));
      writer.write(wire.subarray(at, at + size));
      at += size;
      if (random() < 0.3) await tick();
    }
    await until(() => got.length === frames.length, 'every frame', 10_000);
    assert.deepEqual(got.map((f) => Buffer.from(f).toString('hex')), frames.map((f) => f.toString('hex')));
  });

  it('carries frames between two TcpRawPaths, singly and batched', async (t) => {
    const [one, two] = await tcpPair(t);
    const a = new TcpRawPath(one, { technique: 'test' });
    const b = new TcpRawPath(two, { technique: 'test' });
    const got = collect(b);
    a.send(Uint8Array.of(1, 2, 3));
    const batch = [Uint8Array.of(0, 0, 4), Uint8Array.of(0, 0, 5, 6)];
    a.sendBatch(batch);
    await until(() => got.length === 3, 'three frames');
    assert.deepEqual(got, [Uint8Array.of(1, 2, 3), Uint8Array.of(4), Uint8Array.of(5, 6)]);
    assert.equal(a.headroom, 2);
    assert.equal(a.kind, 'direct-tcp');
    assert.equal(a.remote, `127.0.0.1:${one.remotePort}`);
  });

  it('skips zero-length frames', async (t) => {
    const [writer, reader] = await tcpPair(t);
    const got = collect(new TcpRawPath(reader, { technique: 'test' }));
    writer.write(lengthPrefixed([new Uint8Array(0), Uint8Array.of(7), new Uint8Array(0), new Uint8Array(0), Uint8Array.of(8)]));
    await until(() => got.length === 2, 'two frames');
    await tick();
    assert.deepEqual(got, [Uint8Array.of(7), Uint8Array.of(8)]);
  });

  for (const how of ['end', 'destroy'] as const) {
    it(`fires onClose once when the far end closes (${how}), and is no longer open`, async (t) => {
      const [far, near] = await tcpPair(t);
      const path = new TcpRawPath(near, { technique: 'test' });
      const errors: Array<Error | undefined> = [];
      path.onClose((error) => errors.push(error));
      far[how]();
      await until(() => errors.length > 0, 'onClose');
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(errors.length, 1);
      assert.ok(errors[0] instanceof TransportError);
      assert.equal(errors[0].message, `TCP path to ${path.remote}: the connection closed`);
      assert.equal(path.open, false);
      path.send(Uint8Array.of(1));
    });
  }

  it('does not fire onClose when closed by its owner, and the far end sees the end of the stream', async (t) => {
    const [near, far] = await tcpPair(t);
    const path = new TcpRawPath(near, { technique: 'test' });
    let fired = 0;
    path.onClose(() => fired++);
    const ended = once(far, 'end');
    path.close();
    await ended;
    assert.equal(path.open, false);
    await until(() => near.destroyed, 'the socket released');
    assert.equal(fired, 0);
  });

  it('drops frames and counts them while more than sendLimit bytes wait in the socket', async (t) => {
    const [near, far] = await tcpPair(t);
    far.pause();
    const path = new TcpRawPath(near, { technique: 'test', sendLimit: 64 * 1024 });
    const frame = new Uint8Array(TCP_PATH_PAYLOAD);
    let sent = 0;
    while (path.dropped === 0 && sent < 100_000) {
      path.send(frame);
      sent++;
    }
    assert.ok(path.dropped === 1, 'a frame was dropped');
    assert.ok(near.writableLength > 64 * 1024 && near.writableLength <= 64 * 1024 + TCP_PATH_PAYLOAD + 2, `queued ${near.writableLength}`);
    for (let i = 0; i < 10; i++) path.send(frame);
    assert.equal(path.dropped, 11);
    // The socket drains once the far end reads; frames go through again.
    const got = collect(new TcpRawPath(far, { technique: 'test' }));
    far.resume();
    await until(() => near.writableLength === 0, 'the queue drained', 10_000);
    const before = path.dropped;
    path.send(Uint8Array.of(9));
    await until(() => got.at(-1)?.length === 1, 'the last frame');
    assert.equal(path.dropped, before);
    assert.equal(got.length, sent - 1 + 1, 'every frame not dropped arrived');
  });

  it('refuses a frame too long for its 16-bit length rather than corrupt the framing', async (t) => {
    const [near] = await tcpPair(t);
    const path = new TcpRawPath(near, { technique: 'test' });
    assert.throws(() => path.send(new Uint8Array(0x10000)), (error: unknown) => {
      assert.ok(error instanceof TransportError);
      assert.match(error.message, /frame length 65536, expected at most 65535/);
      return true;
    });
  });
});
