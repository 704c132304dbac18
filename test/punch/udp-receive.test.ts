import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { readdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { once, within } from '../support/wait.js';
import { receiveDatagrams, udpReceiveAvailable, type DatagramReceiver, type ReceivedBatch } from '../../src/punch/udp-receive.js';
import { AddressedSender, udpBatchAddon } from '../../src/punch/udp-batch.js';

async function bound(t: TestContext, type: 'udp4' | 'udp6' = 'udp4', host = type === 'udp4' ? '127.0.0.1' : '::1'): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type, recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
  socket.bind(0, host);
  await once(socket, 'listening');
  t.after(() => { try { socket.close(); } catch { /* already closed */ } });
  return socket;
}

interface Got { address: string; port: number; family: 4 | 6; bytes: Buffer }

/** A receiver that copies every datagram out (as a consumer that keeps data must). */
function collect(socket: dgram.Socket, native: boolean, options: { gro?: boolean; maxDatagram?: number } = {}): { receiver: DatagramReceiver; got: Got[]; batches: number[] } {
  const got: Got[] = [];
  const batches: number[] = [];
  const receiver = receiveDatagrams(socket, (batch: ReceivedBatch) => {
    batches.push(batch.count);
    for (let i = 0; i < batch.count; i++) got.push({ address: batch.address(i), port: batch.port(i), family: batch.family(i), bytes: batch.copy(i) });
  }, { native, ...options });
  return { receiver, got, batches };
}

async function until(what: string, done: () => boolean, seen: () => string): Promise<void> {
  await within((async () => { while (!done()) await new Promise((r) => setTimeout(r, 2)); })(), what, { seen });
}

/** Datagram `seq` of sender `sender`: its numbers, then a size and filling that vary with both. */
function datagram(sender: number, seq: number): Buffer {
  const size = 8 + ((seq * 7 + sender * 13) % 1193);
  const bytes = Buffer.alloc(size, (seq + sender) & 0xff);
  bytes.writeUInt32BE(sender, 0);
  bytes.writeUInt32BE(seq, 4);
  return bytes;
}

const nativeSkip = (): string | false => {
  const available = udpReceiveAvailable();
  return available.ok ? false : available.reason;
};

for (const native of [true, false]) {
  describe(native ? 'receiveDatagrams through the addon (recvmmsg)' : 'receiveDatagrams through node:dgram (the fallback)', () => {
    it('delivers every datagram of a 10,000-datagram burst from 4 senders: bytes, source address and port, in order per sender', async (t) => {
      if (native && nativeSkip()) return t.skip(nativeSkip() as string);
      const rx = await bound(t);
      const { receiver, got, batches } = collect(rx, native);
      assert.equal(receiver.native, native);
      const senders = await Promise.all([0, 1, 2, 3].map(() => bound(t)));
      const port = rx.address().port;
      const PER_SENDER = 2500;
      for (let seq = 0; seq < PER_SENDER; seq++) {
        senders.forEach((s, sender) => s.send(datagram(sender, seq), port, '127.0.0.1'));
        // In steps, so the receive buffer never overflows (a loss would be the kernel's, not ours).
        if (seq % 250 === 249) await until('the step received', () => got.length === (seq + 1) * 4, () => `${got.length}`);
      }
      assert.equal(got.length, 4 * PER_SENDER);
      const next = [0, 0, 0, 0];
      for (const d of got) {
        const sender = d.bytes.readUInt32BE(0);
        assert.equal(d.address, '127.0.0.1');
        assert.equal(d.family, 4);
        assert.equal(d.port, senders[sender]!.address().port);
        assert.deepEqual(d.bytes, datagram(sender, next[sender]!), `sender ${sender} datagram ${next[sender]}`);
        next[sender]!++;
      }
      if (native) assert.ok(batches.length < got.length, `fewer reads than datagrams (${batches.length} for ${got.length})`);
      else assert.ok(batches.every((n) => n === 1));
    });

    it('gives IPv6 senders\' addresses as node:dgram does, IPv4-mapped ones included', async (t) => {
      if (native && nativeSkip()) return t.skip(nativeSkip() as string);
      const rx = dgram.createSocket({ type: 'udp6' });
      rx.bind(0, '::');
      await once(rx, 'listening');
      t.after(() => rx.close());
      const { got } = collect(rx, native);
      const v6 = await bound(t, 'udp6');
      const v4 = await bound(t, 'udp4');
      v6.send(Buffer.from('six'), rx.address().port, '::1');
      v4.send(Buffer.from('four'), rx.address().port, '127.0.0.1');
      await until('both datagrams', () => got.length === 2, () => JSON.stringify(got));
      const byText = new Map(got.map((d) => [d.bytes.toString(), d]));
      assert.deepEqual({ ...byText.get('six'), bytes: undefined }, { address: '::1', port: v6.address().port, family: 6, bytes: undefined });
      assert.deepEqual({ ...byText.get('four'), bytes: undefined }, { address: '::ffff:127.0.0.1', port: v4.address().port, family: 6, bytes: undefined });
    });

    it('keeps feeding the socket\'s other \'message\' listeners, each datagram a Buffer with an rinfo', async (t) => {
      if (native && nativeSkip()) return t.skip(nativeSkip() as string);
      const rx = await bound(t);
      const { got } = collect(rx, native);
      const other: Array<[string, dgram.RemoteInfo]> = [];
      rx.on('message', (message, rinfo) => other.push([message.toString(), rinfo]));
      const tx = await bound(t);
      for (const text of ['a', 'bb', 'ccc']) tx.send(Buffer.from(text), rx.address().port, '127.0.0.1');
      await until('3 datagrams to both', () => got.length === 3 && other.length === 3, () => `${got.length}/${other.length}`);
      assert.deepEqual(other.map(([text, rinfo]) => [text, rinfo.address, rinfo.port, rinfo.family, rinfo.size]),
        ['a', 'bb', 'ccc'].map((text) => [text, '127.0.0.1', tx.address().port, 'IPv4', text.length]));
    });

    it('stops when the socket closes, even from inside its own callback, and frees the port', async (t) => {
      if (native && nativeSkip()) return t.skip(nativeSkip() as string);
      const rx = await bound(t);
      const port = rx.address().port;
      let seen = 0;
      let after = 0;
      receiveDatagrams(rx, (batch) => {
        for (let i = 0; i < batch.count; i++) {
          if (seen++ === 0) rx.close();
          else if (seen > 1) after++;
        }
      }, { native });
      const tx = await bound(t);
      for (let i = 0; i < 50; i++) tx.send(Buffer.from([i]), port, '127.0.0.1');
      await once(rx, 'close');
      await new Promise((r) => setTimeout(r, 50));
      // The rest of the batch it was reading is not delivered to a closed socket's consumer.
      assert.equal(after, 0);
      const again = dgram.createSocket('udp4');
      again.bind(port, '127.0.0.1');
      await once(again, 'listening');
      again.close();
    });

    it('gives the reads back to node:dgram on close() while the socket stays open', async (t) => {
      if (native && nativeSkip()) return t.skip(nativeSkip() as string);
      const rx = await bound(t);
      const { receiver, got } = collect(rx, native);
      receiver.close();
      const later: string[] = [];
      rx.on('message', (message) => later.push(message.toString()));
      const tx = await bound(t);
      tx.send(Buffer.from('after'), rx.address().port, '127.0.0.1');
      await until('node:dgram reads again', () => later.length === 1, () => later.join());
      assert.equal(got.length, 0);
    });
  });
}

describe('the receiver in the addon', () => {
  it('starts on a socket bound later, when it emits \'listening\'', async (t) => {
    if (nativeSkip()) return t.skip(nativeSkip() as string);
    const rx = dgram.createSocket('udp4');
    t.after(() => rx.close());
    const { receiver, got } = collect(rx, true);
    assert.equal(receiver.native, false);
    rx.bind(0, '127.0.0.1');
    await once(rx, 'listening');
    assert.equal(receiver.native, true);
    const tx = await bound(t);
    tx.send(Buffer.from('late'), rx.address().port, '127.0.0.1');
    await until('one datagram', () => got.length === 1, () => '');
    assert.equal(got[0]!.bytes.toString(), 'late');
  });

  it('drops and counts a datagram longer than its slot, and delivers the others', async (t) => {
    if (nativeSkip()) return t.skip(nativeSkip() as string);
    const rx = await bound(t);
    const { receiver, got } = collect(rx, true, { maxDatagram: 100 });
    const tx = await bound(t);
    tx.send(Buffer.alloc(100, 1), rx.address().port, '127.0.0.1');
    tx.send(Buffer.alloc(101, 2), rx.address().port, '127.0.0.1');
    tx.send(Buffer.alloc(3, 3), rx.address().port, '127.0.0.1');
    await until('two datagrams', () => got.length === 2 && receiver.truncated === 1, () => `${got.length} ${receiver.truncated}`);
    assert.deepEqual(got.map((d) => d.bytes.length), [100, 3]);
  });

  it('closes its duplicate fd with the socket: 200 receivers leave no descriptor behind', async (t) => {
    if (nativeSkip()) return t.skip(nativeSkip() as string);
    const fds = (): number => readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let i = 0; i < 200; i++) {
      const socket = dgram.createSocket('udp4');
      socket.bind(0, '127.0.0.1');
      await once(socket, 'listening');
      const receiver = receiveDatagrams(socket, () => undefined);
      assert.equal(receiver.native, true);
      socket.close();
      await once(socket, 'close');
    }
    await new Promise((r) => setImmediate(r));
    assert.ok(fds() <= before + 2, `${fds()} fds open, ${before} before`);
  });

  it('lets a worker that still reads be terminated, three times over (its teardown waits for the poll handle to close)', async (t) => {
    if (nativeSkip()) return t.skip(nativeSkip() as string);
    const module = new URL('../../src/punch/udp-receive.js', import.meta.url).href;
    const code = `
      const dgram = require('node:dgram');
      const { parentPort } = require('node:worker_threads');
      import(${JSON.stringify(module)}).then(({ receiveDatagrams }) => {
        const socket = dgram.createSocket('udp4');
        socket.bind(0, '127.0.0.1', () => {
          const receiver = receiveDatagrams(socket, (batch) => parentPort.postMessage({ got: batch.count }));
          parentPort.postMessage({ port: socket.address().port, native: receiver.native });
        });
      });`;
    const tx = await bound(t);
    for (let round = 0; round < 3; round++) {
      const worker = new Worker(code, { eval: true });
      const [ready] = await once(worker, 'message') as [{ port: number; native: boolean }];
      assert.equal(ready.native, true);
      tx.send(Buffer.from('x'), ready.port, '127.0.0.1');
      assert.deepEqual((await once(worker, 'message'))[0], { got: 1 });
      assert.equal(await worker.terminate(), 1);
    }
  });

  it('splits UDP GRO reads into their datagrams (sent with UDP GSO), bytes and order intact', async (t) => {
    if (nativeSkip()) return t.skip(nativeSkip() as string);
    const rx = await bound(t);
    const { receiver, got, batches } = collect(rx, true, { gro: true });
    if (!receiver.gro) return t.skip('the kernel refused UDP_GRO');
    const tx = await bound(t);
    const addon = udpBatchAddon()!;
    const fd = (tx as unknown as Record<symbol, { handle: { fd: number } }>)[Object.getOwnPropertySymbols(tx).find((s) => s.description === 'state symbol')!]!.handle.fd;
    const burst = Array.from({ length: 64 }, (_, i) => datagram(0, i).subarray(0, i === 63 ? 500 : 1200).fill(i, 8));
    for (let i = 0; i < 64; i++) burst[i]!.writeUInt32BE(i, 4);
    let sent = 0;
    for (let round = 0; round < 10; round++) {
      const result = addon.sendBatch(fd, false, '127.0.0.1', rx.address().port, burst, true);
      if (result < 0) return t.skip(`UDP GSO refused (errno ${-result})`);
      sent += result;
      await until('the burst', () => got.length === sent, () => `${got.length}/${sent}`);
    }
    assert.equal(got.length, 640);
    got.forEach((d, i) => assert.deepEqual(d.bytes, burst[i % 64], `datagram ${i}`));
    // Loopback keeps a GSO message whole up to a GRO socket: far fewer records per read than datagrams.
    assert.ok(batches.length < 640 / 8, `${batches.length} reads for 640 datagrams`);
  });
});

describe('AddressedSender', () => {
  for (const native of [true, false]) {
    it(`sends to several destinations in one flush, copying the bytes when queued (${native ? 'sendmmsg' : 'node:dgram'})`, async (t) => {
      if (native && nativeSkip()) return t.skip(nativeSkip() as string);
      const tx = await bound(t);
      const receivers = await Promise.all([0, 1, 2].map(() => bound(t)));
      const got: string[][] = receivers.map(() => []);
      receivers.forEach((r, i) => r.on('message', (m) => got[i]!.push(m.toString())));
      const sender = new AddressedSender(tx, { native });
      const scratch = Buffer.from('xx');
      for (let k = 0; k < 30; k++) {
        scratch.write(`${k % 10}`, 0);
        sender.send([scratch.subarray(0, 1), Buffer.from(`-${k}`)], receivers[k % 3]!.address().port, '127.0.0.1');
      }
      scratch.fill(0); // after queueing: what was queued is a copy
      await until('30 datagrams', () => got.flat().length === 30, () => JSON.stringify(got));
      got.forEach((list, i) => assert.deepEqual(list, Array.from({ length: 10 }, (_, j) => `${(j * 3 + i) % 10}-${j * 3 + i}`)));
      if (native) assert.deepEqual(sender.stats, { batches: 1, batched: 30, fallback: 0 });
      else assert.deepEqual(sender.stats, { batches: 0, batched: 0, fallback: 30 });
    });
  }
  for (const gso of [true, false]) {
    it(`keeps datagram boundaries and order in runs to one address, with${gso ? '' : 'out'} UDP GSO`, async (t) => {
      if (nativeSkip()) return t.skip(nativeSkip() as string);
      const tx = await bound(t);
      const [a, b] = await Promise.all([bound(t), bound(t)]);
      const got: Buffer[][] = [[], []];
      a!.on('message', (m) => got[0]!.push(m));
      b!.on('message', (m) => got[1]!.push(m));
      const sender = new AddressedSender(tx, { gso });
      // Runs GSO may coalesce (same address, equal size, back to back), each broken by a shorter
      // datagram, a datagram to the other address, or a larger one; 150 of them: more than one
      // GSO message (64 segments) in a run.
      const expected: Buffer[][] = [[], []];
      const queue = (to: 0 | 1, size: number, seq: number): void => {
        const bytes = Buffer.alloc(size, seq & 0xff);
        bytes.writeUInt32BE(seq, 0);
        expected[to]!.push(bytes);
        sender.send(bytes, [a!, b!][to]!.address().port, '127.0.0.1');
      };
      let seq = 0;
      for (let i = 0; i < 150; i++) queue(0, 1200, seq++);
      queue(0, 700, seq++);
      queue(0, 1200, seq++);
      queue(1, 1200, seq++);
      queue(0, 1200, seq++);
      for (let i = 0; i < 10; i++) queue(1, 400, seq++);
      queue(1, 1000, seq++);
      await until(`${seq} datagrams`, () => got[0]!.length + got[1]!.length === seq, () => `${got[0]!.length} + ${got[1]!.length}`);
      assert.deepEqual(got, expected);
      assert.equal(sender.stats.fallback, 0);
      assert.equal(sender.stats.batched, seq);
    });
  }
});
