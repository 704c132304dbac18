import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { StunServer } from '../../src/stun/server.js';
import { PeerAddressPolicy, TurnClient, TurnServer, openUdpTransport } from '../../src/turn/index.js';
import { udpReceiveAvailable } from '../../src/punch/udp-receive.js';
import { ROUTE_TTL_MS } from '../../src/turn/fast-path.js';
import type { TransportAddress } from '../../src/wire/index.js';
import { within } from '../support/wait.js';
import { channelData } from '../support/channel-data.js';

/**
 * The relay's fast path (src/turn/fast-path.ts, udp_recv.c setForward): two clients of one
 * natpunch relay with channels to each other's relayed addresses, the usual way two peers meet
 * on a relay. After the server has relayed the first datagram of a flow itself, the addon
 * relays the rest without calling into JavaScript, and the server's books read the same.
 */

const COUNT = 3000;
/** Bytes of most datagrams: equal sizes let the kernel hand them over as GRO reads. */
const SIZE = 1200;

function payload(seq: number): Buffer {
  // Every 7th datagram is shorter, which ends a GRO run: both kinds of read are forwarded.
  const bytes = Buffer.alloc(seq % 7 === 6 ? 100 + (seq % 50) : SIZE, seq & 0xff);
  bytes.writeUInt32BE(seq, 0);
  return bytes;
}

async function until(what: string, done: () => boolean, seen: () => string): Promise<void> {
  await within((async () => { while (!done()) await new Promise((r) => setTimeout(r, 2)); })(), what, { seen });
}

interface Pair {
  turn: TurnServer;
  a: TurnClient;
  b: TurnClient;
  aRelayed: TransportAddress;
  bRelayed: TransportAddress;
  atB: Buffer[];
  /** Calls of the server's ChannelData handler: the datagrams JavaScript saw. */
  handled: () => number;
  /** When it was last called (performance.now()). */
  handledAt: () => number;
}

async function pair(t: TestContext): Promise<Pair> {
  const turn = new TurnServer({
    relayAddress: '127.0.0.1', realm: 'natpunch.test', users: new Map([['alice', 'wonderland']]),
    policy: new PeerAddressPolicy({ serverAddresses: ['127.0.0.1'] }),
  });
  let calls = 0;
  let at = 0;
  const handle = turn.handleChannelData.bind(turn);
  turn.handleChannelData = (...args) => {
    calls++;
    at = performance.now();
    handle(...args);
  };
  const stun = await StunServer.listen({ address: '127.0.0.1', port: 0, shared: turn });
  const clients: TurnClient[] = [];
  // Clients first: each says goodbye (Refresh 0) to a server that is still there to answer.
  t.after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await turn.close();
    await stun.close();
  });
  const server = stun.addresses[0]! as TransportAddress;
  const a = new TurnClient(await openUdpTransport(server, { localAddress: '127.0.0.1' }));
  const b = new TurnClient(await openUdpTransport(server, { localAddress: '127.0.0.1' }));
  clients.push(a, b);
  const aRelayed = (await a.allocate({ username: 'alice', password: 'wonderland' })).relayed;
  const bRelayed = (await b.allocate({ username: 'alice', password: 'wonderland' })).relayed;
  await a.bindChannel(bRelayed);
  await b.bindChannel(aRelayed);
  const atB: Buffer[] = [];
  b.on('data', (_from, data: Uint8Array) => atB.push(Buffer.from(data)));
  return { turn, a, b, aRelayed, bRelayed, atB, handled: () => calls, handledAt: () => at };
}

/** Sends `count` datagrams (seq from `from`) from a to b's relayed address in bursts of 100, waiting for each burst. */
async function stream(p: Pair, from: number, count = COUNT): Promise<void> {
  const channel = p.a.channelFor(p.bRelayed)!;
  for (let seq = from; seq < from + count; seq += 100) {
    const burst: Buffer[] = [];
    for (let i = seq; i < seq + 100; i++) burst.push(channelData(channel, payload(i)));
    p.a.sendChannelData(burst);
    await until('the burst at b', () => p.atB.length === seq + 100, () => `${p.atB.length} datagrams at b`);
  }
}

describe('the relay fast path between two clients of one server', () => {
  it(`relays ${COUNT} datagrams intact and in order, JavaScript seeing only the first read, and books them all`, { timeout: 60_000 }, async (t) => {
    if (!udpReceiveAvailable().ok) return t.skip(`no batched receives here: ${(udpReceiveAvailable() as { reason: string }).reason}`);
    const p = await pair(t);
    await stream(p, 0);
    p.atB.forEach((data, seq) => assert.deepEqual(data, payload(seq), `datagram ${seq}`));
    assert.equal(p.turn.stats.fastPathRules, 1, 'one rule: a → b');
    // The first read (a burst of 100 may come as one), and one read each time the rule is
    // re-decided (every 2 s at most).
    assert.ok(p.handled() <= COUNT / 10, `JavaScript handled ${p.handled()} of ${COUNT} datagrams`);
    const bytes = p.atB.reduce((sum, data) => sum + data.length, 0);
    const stats = p.turn.stats;
    assert.equal(stats.packetsRelayed, 2 * COUNT, 'each datagram counts in and out, as on the slow path');
    assert.equal(stats.bytesToPeers, bytes);
    assert.equal(stats.bytesToClients, bytes);
    assert.equal(stats.packetsDropped, 0);
    assert.equal(stats.fastPathDatagrams, COUNT - p.handled(), 'every datagram JavaScript did not see went by the fast path');
  });

  it(`renews a rule when it lapses (every ${ROUTE_TTL_MS} ms at most): a longer flow stays on the fast path`, { timeout: 60_000 }, async (t) => {
    if (!udpReceiveAvailable().ok) return t.skip(`no batched receives here: ${(udpReceiveAvailable() as { reason: string }).reason}`);
    const p = await pair(t);
    const started = performance.now();
    let sent = 0;
    // Past the first rule's time to live, until a read has just been decided by the server
    // again: the renewed rule then has most of its time to live ahead of it.
    while (performance.now() - started < ROUTE_TTL_MS * 1.5 || performance.now() - p.handledAt() > ROUTE_TTL_MS / 4) {
      await stream(p, sent, 100);
      sent += 100;
    }
    const handled = p.handled();
    await stream(p, sent, 1000);
    sent += 1000;
    assert.equal(p.handled(), handled, 'the renewed rule relayed the next 1000 datagrams');
    p.atB.forEach((data, seq) => assert.deepEqual(data, payload(seq), `datagram ${seq}`));
    assert.equal(p.turn.stats.packetsRelayed, 2 * sent);
    assert.equal(p.turn.stats.fastPathRules, 1);
  });

  it('passes padded ChannelData to the server, which relays the data without its padding', { timeout: 60_000 }, async (t) => {
    if (!udpReceiveAvailable().ok) return t.skip(`no batched receives here: ${(udpReceiveAvailable() as { reason: string }).reason}`);
    const p = await pair(t);
    await stream(p, 0);
    const before = p.handled();
    const channel = p.a.channelFor(p.bRelayed)!;
    const data = payload(COUNT);
    p.a.sendChannelData([channelData(channel, data, 3)]);
    await until('the padded datagram at b', () => p.atB.length === COUNT + 1, () => `${p.atB.length}`);
    assert.deepEqual(p.atB[COUNT], data);
    assert.equal(p.handled(), before + 1, 'the padded datagram went through the server');
  });

  it('forgets the rule with the receiving allocation: what follows is dropped by the server, not forwarded', { timeout: 60_000 }, async (t) => {
    if (!udpReceiveAvailable().ok) return t.skip(`no batched receives here: ${(udpReceiveAvailable() as { reason: string }).reason}`);
    const p = await pair(t);
    await stream(p, 0);
    assert.equal(p.turn.stats.fastPathRules, 1);
    await p.b.close();
    assert.equal(p.turn.stats.fastPathRules, 0, 'b\'s allocation took its rule with it');
    const relayed = p.turn.stats.packetsRelayed;
    const channel = p.a.channelFor(p.bRelayed)!;
    const before = p.handled();
    p.a.sendChannelData(Array.from({ length: 50 }, (_, i) => channelData(channel, payload(i))));
    await until('the server to see all 50', () => p.handled() === before + 50, () => `${p.handled() - before} seen`);
    const stats = p.turn.stats;
    assert.equal(stats.packetsRelayed, relayed, 'nothing relayed to the gone allocation');
    assert.equal(stats.packetsDropped, 50);
  });
});
