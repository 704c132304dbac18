import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once, within } from '../support/wait.js';
import { createBatchSender, udpBatchAddon, udpBatchAvailable, UdpBatchSender, type UdpBatchAddon } from '../../src/punch/udp-batch.js';
import { UdpMux } from '../../src/punch/udp-mux.js';
import { UdpEndpoint } from '../../src/path/udp-endpoint.js';
import { createStream } from '../../src/transport/stream-connection.js';
import type { TransportAddress } from '../../src/wire/index.js';
import { pseudoRandomBytes, readAll, sha256, writeAll } from '../transport/helpers.js';

const EAGAIN = 11;
const EIO = 5;
const EBADF = 9;

async function bound(t: TestContext, options: dgram.SocketOptions = { type: 'udp4' }, host = '127.0.0.1'): Promise<{ socket: dgram.Socket; address: TransportAddress }> {
  const socket = dgram.createSocket({ recvBufferSize: 4 << 20, ...options });
  socket.bind(0, host);
  await once(socket, 'listening');
  t.after(() => { try { socket.close(); } catch { /* already closed */ } });
  return { socket, address: { family: options.type === 'udp6' ? 6 : 4, address: host, port: socket.address().port } };
}

/** The fd node:dgram reads, found as src/punch/udp-batch.ts finds it. */
function fdOf(socket: dgram.Socket): number {
  const symbol = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol')!;
  return (socket as unknown as Record<symbol, { handle: { fd: number } }>)[symbol].handle.fd;
}

/** Resolves with the first `count` datagrams `socket` receives, in arrival order. */
function receive(socket: dgram.Socket, count: number): Promise<Buffer[]> {
  const got: Buffer[] = [];
  return within(new Promise((resolve) => {
    socket.on('message', (message) => {
      got.push(message);
      if (got.length === count) resolve(got);
    });
  }), `${count} datagrams`, { seen: () => `${got.length}` });
}

function datagrams(count: number, size = 1200, lastSize = size): Buffer[] {
  return Array.from({ length: count }, (_, i) => {
    const buffer = Buffer.alloc(i === count - 1 ? lastSize : size, i & 0xff);
    buffer.writeUInt32BE(i);
    return buffer;
  });
}

/** A fake addon that takes `take(call)` datagrams (or returns it as -errno) and records each call. */
function fakeAddon(take: (call: number, gso: boolean) => number) {
  const calls: { count: number; gso: boolean; fd: number }[] = [];
  const addon: UdpBatchAddon = {
    sendBatch(fd, _ipv6, _address, _port, buffers, gso) {
      calls.push({ count: buffers.length, gso, fd });
      const result = take(calls.length, gso);
      return result < 0 ? result : Math.min(result, buffers.length);
    },
  };
  return { addon, calls };
}

describe('UdpBatchSender with a fake addon', () => {
  it('sends what the addon did not take through socket.send, in order (EAGAIN after 3)', async (t) => {
    const tx = await bound(t);
    const rx = await bound(t);
    const { addon, calls } = fakeAddon(() => 3);
    const sender = new UdpBatchSender(tx.socket, addon);
    const all = datagrams(10);
    const arrived = receive(rx.socket, 7);
    sender.send(all, rx.address);
    const got = await arrived;
    assert.deepEqual(got.map((m) => m.readUInt32BE(0)), [3, 4, 5, 6, 7, 8, 9], 'the fake took 0..2; node sent the rest in order');
    assert.equal(calls.length, 1);
    assert.ok(calls[0]!.fd >= 0, `the socket's fd: ${calls[0]!.fd}`);
    assert.deepEqual(sender.stats, { batches: 1, batched: 3, fallback: 7 });
    assert.equal(sender.disabled, undefined);
  });

  it('leaves a burst to socket.send when the addon sent nothing (EAGAIN) and tries again next time', async (t) => {
    const tx = await bound(t);
    const rx = await bound(t);
    const { addon, calls } = fakeAddon((call) => (call === 1 ? -EAGAIN : 5));
    const sender = new UdpBatchSender(tx.socket, addon);
    const arrived = receive(rx.socket, 5);
    sender.send(datagrams(5), rx.address);
    assert.equal((await arrived).length, 5);
    sender.send(datagrams(5), rx.address);
    assert.equal(calls.length, 2);
    assert.deepEqual(sender.stats, { batches: 1, batched: 5, fallback: 5 });
  });

  it('drops UDP GSO after the kernel refused it (EIO) and retries the same burst without it', async (t) => {
    const tx = await bound(t);
    const rx = await bound(t);
    const { addon, calls } = fakeAddon((_call, gso) => (gso ? -EIO : 100));
    const sender = new UdpBatchSender(tx.socket, addon);
    assert.equal(sender.gso, true);
    sender.send(datagrams(4), rx.address);
    sender.send(datagrams(4), rx.address);
    assert.deepEqual(calls.map((c) => c.gso), [true, false, false]);
    assert.equal(sender.gso, false);
    assert.deepEqual(sender.stats, { batches: 2, batched: 8, fallback: 0 });
  });

  it('stops using the addon on a socket whose fd is gone (EBADF): everything through socket.send', async (t) => {
    const tx = await bound(t);
    const rx = await bound(t);
    const { addon, calls } = fakeAddon(() => -EBADF);
    const sender = new UdpBatchSender(tx.socket, addon);
    const arrived = receive(rx.socket, 8);
    sender.send(datagrams(4), rx.address);
    sender.send(datagrams(4), rx.address);
    assert.equal((await arrived).length, 8);
    assert.equal(calls.length, 1);
    assert.match(sender.disabled ?? '', /errno 9/);
  });

  it('sends a single datagram and an unbound socket\'s burst through socket.send', async (t) => {
    const rx = await bound(t);
    const { addon, calls } = fakeAddon(() => 100);
    const tx = dgram.createSocket('udp4');
    t.after(() => tx.close());
    const sender = new UdpBatchSender(tx, addon);
    const arrived = receive(rx.socket, 4);
    sender.send(datagrams(3), rx.address); // not bound yet: node binds it and queues the sends
    sender.send(datagrams(1), rx.address);
    assert.equal((await arrived).length, 4);
    assert.equal(calls.length, 0);
  });

  it('throws as socket.send does once the socket is closed', async (t) => {
    const tx = await bound(t);
    const rx = await bound(t);
    const { addon, calls } = fakeAddon(() => 100);
    const sender = new UdpBatchSender(tx.socket, addon);
    tx.socket.close();
    assert.throws(() => sender.send(datagrams(3), rx.address), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
    assert.equal(calls.length, 0, 'a closed socket\'s fd is never handed to the addon');
  });
});

describe('NATPUNCH_NO_NATIVE=1', () => {
  it('turns batching off, with the reason: the mux sends one by one and the UDP path has no sendBatch', async (t) => {
    const before = process.env['NATPUNCH_NO_NATIVE'];
    process.env['NATPUNCH_NO_NATIVE'] = '1';
    try {
      assert.deepEqual(udpBatchAvailable(), { ok: false, reason: 'NATPUNCH_NO_NATIVE=1 turns the native addon off' });
      const tx = await bound(t);
      assert.equal(createBatchSender(tx.socket), undefined);
      const mux = new UdpMux(tx.socket);
      t.after(() => mux.close());
      assert.equal(mux.canBatch, false);
      const endpoint = new UdpEndpoint(mux, 'session');
      const path = endpoint.pathTo({ family: 4, address: '127.0.0.1', port: 9 }, 'test');
      assert.equal(path.sendBatch, undefined);
      endpoint.close();
    } finally {
      if (before === undefined) delete process.env['NATPUNCH_NO_NATIVE'];
      else process.env['NATPUNCH_NO_NATIVE'] = before;
    }
  });
});

describe('NATPUNCH_NO_GSO=1', () => {
  it('keeps batching but without UDP GSO', async (t) => {
    const before = process.env['NATPUNCH_NO_GSO'];
    process.env['NATPUNCH_NO_GSO'] = '1';
    try {
      const tx = await bound(t);
      const { addon } = fakeAddon(() => 100);
      assert.equal(createBatchSender(tx.socket, { addon })!.gso, false);
      assert.equal(createBatchSender(tx.socket, { addon, gso: true })!.gso, true, 'an explicit option wins');
    } finally {
      if (before === undefined) delete process.env['NATPUNCH_NO_GSO'];
      else process.env['NATPUNCH_NO_GSO'] = before;
    }
  });
});

describe('the native addon (native/udp-batch)', () => {
  for (const gso of [true, false]) {
    it(`sends bursts on loopback in order and intact (gso ${gso}), the last datagram shorter`, async (t) => {
      const available = udpBatchAvailable();
      if (!available.ok) {
        t.skip(available.reason);
        return;
      }
      const tx = await bound(t);
      const rx = await bound(t);
      const sender = createBatchSender(tx.socket, { gso })!;
      const sent = [...datagrams(130, 1200, 333), ...datagrams(3, 500)];
      const arrived = receive(rx.socket, sent.length);
      sender.send(sent.slice(0, 64), rx.address);
      sender.send(sent.slice(64, 130), rx.address);
      sender.send(sent.slice(130), rx.address);
      const got = await arrived;
      got.forEach((message, i) => assert.ok(message.equals(sent[i]!), `datagram ${i} differs (${message.length} bytes)`));
      assert.equal(sender.disabled, undefined);
      assert.ok(sender.stats.batched > 0, `the addon sent: ${JSON.stringify(sender.stats)}`);
    });
  }

  it('sends on an IPv6 socket, and returns -EAFNOSUPPORT for an address it cannot parse', async (t) => {
    const addon = udpBatchAddon();
    if (addon === undefined) {
      t.skip((udpBatchAvailable() as { reason: string }).reason);
      return;
    }
    const tx = await bound(t, { type: 'udp6' }, '::1');
    const rx = await bound(t, { type: 'udp6' }, '::1');
    const sender = createBatchSender(tx.socket)!;
    const sent = datagrams(5);
    const arrived = receive(rx.socket, sent.length);
    sender.send(sent, { family: 6, address: '::1', port: rx.address.port });
    (await arrived).forEach((message, i) => assert.ok(message.equals(sent[i]!), `datagram ${i} differs`));
    assert.equal(sender.stats.batched, 5);
    const EAFNOSUPPORT = 97;
    assert.equal(addon.sendBatch(fdOf(tx.socket), true, 'fe80::1%nosuchif', 9, sent, false), -EAFNOSUPPORT);
    assert.equal(addon.sendBatch(fdOf(tx.socket), true, 'localhost', 9, sent, false), -EAFNOSUPPORT, 'a hostname');
    const tx4 = await bound(t);
    assert.equal(addon.sendBatch(fdOf(tx4.socket), false, '::1', 9, sent, false), -EAFNOSUPPORT, 'an IPv6 address on an IPv4 socket');
  });
});

describe('a stream over a UDP raw path (src/path/udp-endpoint.ts) on loopback', { timeout: 60_000 }, () => {
  for (const noNative of [false, true]) {
    it(`moves 4 MiB intact ${noNative ? 'with NATPUNCH_NO_NATIVE=1 (one send per datagram)' : 'with batched sends where the addon is built'}`, async (t) => {
      const before = process.env['NATPUNCH_NO_NATIVE'];
      if (noNative) process.env['NATPUNCH_NO_NATIVE'] = '1';
      try {
        const a = await bound(t);
        const b = await bound(t);
        const muxA = new UdpMux(a.socket);
        const muxB = new UdpMux(b.socket);
        assert.equal(muxA.canBatch, !noNative && udpBatchAvailable().ok);
        const endpointA = new UdpEndpoint(muxA, 'loopback');
        const endpointB = new UdpEndpoint(muxB, 'loopback');
        const pathA = endpointA.pathTo(b.address, 'test');
        const pathB = endpointB.pathTo(a.address, 'test');
        const streamA = createStream(pathA);
        const streamB = createStream(pathB);
        t.after(() => { streamA.destroy(); streamB.destroy(); endpointA.close(); endpointB.close(); muxA.close(); muxB.close(); });
        const data = pseudoRandomBytes(4 << 20, 31);
        const [received] = await Promise.all([readAll(streamB), writeAll(streamA, data)]);
        assert.equal(sha256(received), sha256(data));
        if (muxA.batchSender) assert.ok(muxA.batchSender.stats.batched > 1000, `batched: ${JSON.stringify(muxA.batchSender.stats)}`);
      } finally {
        if (before === undefined) delete process.env['NATPUNCH_NO_NATIVE'];
        else process.env['NATPUNCH_NO_NATIVE'] = before;
      }
    });
  }
});
