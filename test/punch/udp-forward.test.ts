import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { receiveDatagrams, udpReceiveAvailable, type DatagramReceiver } from '../../src/punch/udp-receive.js';
import { socketFd } from '../../src/punch/udp-batch.js';
import { FORWARD_RULES, type ForwardRule } from '../../src/punch/udp-forward.js';
import { within } from '../support/wait.js';
import { channelData } from '../support/channel-data.js';

/**
 * Forwarding rules on a batched receiver (udp_recv.c setForward): what a rule matches leaves at
 * once as another channel to another address, byte for byte otherwise, and never reaches
 * JavaScript; what it does not match (another source, another channel, padding, after the rule
 * is removed or has expired) reaches onBatch exactly as without rules.
 */

const IN = 0x4001;
const OUT = 0x4123;

async function socket(t: TestContext, address = '127.0.0.1'): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  s.bind(0, address);
  await once(s, 'listening');
  t.after(() => s.close());
  return s;
}

interface Rig {
  relay: dgram.Socket;
  receiver: DatagramReceiver;
  sender: dgram.Socket;
  target: dgram.Socket;
  /** Datagrams onBatch saw, as copies. */
  seen: Buffer[];
  /** Datagrams the target got. */
  got: Buffer[];
  rule: (overrides?: Partial<ForwardRule>) => ForwardRule;
}

async function rig(t: TestContext): Promise<Rig> {
  const relay = await socket(t);
  const seen: Buffer[] = [];
  const receiver = receiveDatagrams(relay, (batch) => { for (let i = 0; i < batch.count; i++) seen.push(batch.copy(i)); }, { gro: true });
  t.after(() => receiver.close());
  const sender = await socket(t);
  const target = await socket(t, '127.0.0.2');
  const got: Buffer[] = [];
  target.on('message', (message) => got.push(message));
  const rule = (overrides: Partial<ForwardRule> = {}): ForwardRule => ({
    from: { address: '127.0.0.1', port: sender.address().port }, channel: IN,
    outFd: socketFd(relay)!, outIpv6Socket: false,
    to: { address: '127.0.0.2', port: target.address().port }, outChannel: OUT, ttlMs: 60_000, ...overrides,
  });
  return { relay, receiver, sender, target, seen, got, rule };
}

async function until(what: string, done: () => boolean, seen: () => string): Promise<void> {
  await within((async () => { while (!done()) await new Promise((r) => setTimeout(r, 2)); })(), what, { seen });
}

function send(from: dgram.Socket, to: dgram.Socket, message: Buffer): void {
  from.send(message, to.address().port, to.address().address);
}

describe('forwarding rules on a batched receiver', () => {
  it('forwards what a rule matches as the other channel, intact, without JavaScript, and counts it', { timeout: 60_000 }, async (t) => {
    if (!udpReceiveAvailable().ok) return t.skip(`no batched receives here: ${(udpReceiveAvailable() as { reason: string }).reason}`);
    const r = await rig(t);
    const table = r.receiver.forwards;
    assert.ok(table, 'the receiver has a forwarding table');
    const index = table.add(r.rule());
    assert.equal(index, 0);
    const data = Array.from({ length: 500 }, (_, i) => Buffer.alloc(i % 10 === 9 ? 37 : 1200, i & 0xff));
    for (const d of data) send(r.sender, r.relay, channelData(IN, d));
    await until('every datagram at the target', () => r.got.length === data.length, () => `${r.got.length}`);
    r.got.forEach((message, i) => assert.deepEqual(message, channelData(OUT, data[i]!), `datagram ${i}`));
    assert.equal(r.seen.length, 0, 'onBatch saw none of them');
    const counts = table.take(index);
    assert.deepEqual(counts, { datagrams: data.length, bytes: data.reduce((s, d) => s + d.length, 0), dropped: 0 });
    assert.deepEqual(table.take(index), { datagrams: 0, bytes: 0, dropped: 0 }, 'take zeroes');
  });

  it('passes to onBatch what no rule matches: another channel, another source, padded ChannelData, anything after removal', { timeout: 60_000 }, async (t) => {
    if (!udpReceiveAvailable().ok) return t.skip(`no batched receives here: ${(udpReceiveAvailable() as { reason: string }).reason}`);
    const r = await rig(t);
    const table = r.receiver.forwards!;
    const index = table.add(r.rule())!;
    const other = await socket(t);
    const data = Buffer.alloc(64, 7);
    const expected = [channelData(IN + 1, data), channelData(IN, data), channelData(IN, data, 3), Buffer.from('not channel data')];
    send(r.sender, r.relay, expected[0]!);
    send(other, r.relay, expected[1]!);
    send(r.sender, r.relay, expected[2]!);
    send(r.sender, r.relay, expected[3]!);
    await until('four datagrams at onBatch', () => r.seen.length === 4, () => `${r.seen.length}`);
    assert.deepEqual(r.seen, expected);
    table.remove(index);
    send(r.sender, r.relay, channelData(IN, data));
    await until('the datagram after removal at onBatch', () => r.seen.length === 5, () => `${r.seen.length}`);
    assert.deepEqual(r.seen[4], channelData(IN, data));
    assert.equal(r.got.length, 0, 'nothing forwarded');
  });

  it('lets a rule lapse after its time to live', { timeout: 60_000 }, async (t) => {
    if (!udpReceiveAvailable().ok) return t.skip(`no batched receives here: ${(udpReceiveAvailable() as { reason: string }).reason}`);
    const r = await rig(t);
    r.receiver.forwards!.add(r.rule({ ttlMs: 200 }));
    const data = Buffer.alloc(32, 1);
    // Sent until one reaches onBatch: forwarded while the rule lives, then the server's again.
    await within((async () => {
      while (r.seen.length === 0) {
        send(r.sender, r.relay, channelData(IN, data));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })(), 'a datagram at onBatch once the rule lapsed', { seen: () => `${r.got.length} forwarded` });
    assert.ok(r.got.length > 0, 'forwarded while the rule lived');
  });

  it(`holds ${FORWARD_RULES} rules; a removed one frees its slot`, { timeout: 60_000 }, async (t) => {
    if (!udpReceiveAvailable().ok) return t.skip(`no batched receives here: ${(udpReceiveAvailable() as { reason: string }).reason}`);
    const r = await rig(t);
    const table = r.receiver.forwards!;
    const slots = Array.from({ length: FORWARD_RULES }, (_, i) => table.add(r.rule({ channel: IN + i })));
    assert.deepEqual(slots, Array.from({ length: FORWARD_RULES }, (_, i) => i));
    assert.equal(table.add(r.rule({ channel: 0x4fff })), undefined, 'full');
    table.remove(17);
    assert.equal(table.add(r.rule({ channel: 0x4fff })), 17);
    assert.equal(table.size, FORWARD_RULES);
    assert.equal(table.add(r.rule({ to: { address: 'example.org', port: 1 } })), undefined, 'only IP addresses');
  });
});
