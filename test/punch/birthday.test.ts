import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { getEventListeners, once } from 'node:events';
import { randomBytes } from 'node:crypto';
import {
  BIRTHDAY_MIN_INTERVAL_MS, BirthdayGate, HARD_LIFETIME_MS, HARD_RESEND_MS, SPRAY_PACING_MS, SPRAY_PROBES, birthdaySockets, birthdaySpray,
} from '../../src/punch/birthday.js';
import { birthdaySide } from '../../src/peer/establish.js';
import type { PunchInstruction } from '../../src/rendezvous/index.js';
import { AttrType, Method, MessageClass, decodeMessage, encodeMessage, getAttribute, type TransportAddress, verifyIntegrity } from '../../src/wire/index.js';
import type { Clock } from '../../src/clock.js';

const SESSION = 'AAAAAAAAAAAAAAAAAAAAAA';
const KEY = new Uint8Array(32).fill(7);

function manualClock(): Clock & { advance(ms: number): void } {
  let now = 0;
  return { now: () => now, setTimeout: () => 0, clearTimeout: () => {}, advance: (ms) => { now += ms; } };
}

test('BirthdayGate: one punch at a time, and starts at least BIRTHDAY_MIN_INTERVAL_MS apart', () => {
  const clock = manualClock();
  const gate = new BirthdayGate(clock);
  const release = gate.tryAcquire();
  assert.ok(release);
  assert.equal(gate.tryAcquire(), undefined, 'a second punch while one runs');
  clock.advance(BIRTHDAY_MIN_INTERVAL_MS + 1);
  assert.equal(gate.tryAcquire(), undefined, 'still running, however long ago it started');
  release();
  release(); // idempotent
  const next = gate.tryAcquire();
  assert.ok(next, 'released and the interval is over');
  next();
  clock.advance(BIRTHDAY_MIN_INTERVAL_MS - 1);
  assert.equal(gate.tryAcquire(), undefined, 'released, but the last one started too recently');
  clock.advance(1);
  assert.ok(gate.tryAcquire());
});

test('the budget constants agree with their derivation: ≤ 2,048 probes 4 ms apart, the hard side waiting out the spray', () => {
  assert.equal(SPRAY_PROBES, 2048);
  assert.equal(SPRAY_PACING_MS, 4);
  assert.ok(HARD_LIFETIME_MS >= SPRAY_PROBES * SPRAY_PACING_MS, 'the hard side stays open at least as long as the spray lasts');
  // (1 − 256/64512)^2048: the chance that every probe misses every one of 256 mappings.
  assert.ok((1 - 256 / 64512) ** SPRAY_PROBES < 0.001);
});

test('birthdaySpray: distinct random ports of the one signed address, every one a check of the session, no more than asked', async () => {
  const sent: TransportAddress[] = [];
  const sprayed = new Set<number>();
  const count = await birthdaySpray({
    send: (data, to) => {
      const message = decodeMessage(data);
      assert.equal(message.method, Method.Binding);
      assert.equal(message.messageClass, MessageClass.Request);
      assert.ok(verifyIntegrity(message, KEY));
      assert.equal(Buffer.from(getAttribute(message, AttrType.Username)!).toString(), SESSION);
      sent.push(to);
    },
    session: SESSION, key: KEY, address: '203.0.113.7', family: 4, signal: new AbortController().signal, probes: 40, sprayed,
  });
  assert.equal(count, 40);
  assert.equal(sent.length, 40);
  assert.ok(sent.every((to) => to.address === '203.0.113.7' && to.port >= 1024 && to.port <= 65535));
  assert.equal(new Set(sent.map((to) => to.port)).size, 40, 'no port probed twice');
  assert.deepEqual([...sprayed].sort(), sent.map((to) => to.port).sort());
});

test('birthdaySpray stops when its signal aborts', async () => {
  const controller = new AbortController();
  let sent = 0;
  const count = await birthdaySpray({
    send: () => { if (++sent === 5) controller.abort(); },
    session: SESSION, key: KEY, address: '203.0.113.7', family: 4, signal: controller.signal,
  });
  assert.equal(count, 5);
});

test('birthdaySpray leaves no listener on its signal: one per pause, removed when the pause ends', async () => {
  const controller = new AbortController();
  await birthdaySpray({ send: () => undefined, session: SESSION, key: KEY, address: '203.0.113.7', family: 4, signal: controller.signal, probes: 20 });
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
});

/** A clock whose timers run only when told to (the spray's pacing is all it schedules). */
function steppedClock(): Clock & { step(): boolean; readonly now: () => number } {
  let now = 0;
  const timers: Array<{ at: number; callback: () => void; cancelled: boolean }> = [];
  return {
    now: () => now,
    setTimeout: (callback, ms) => { const timer = { at: now + ms, callback, cancelled: false }; timers.push(timer); return timer; },
    clearTimeout: (handle) => { (handle as { cancelled: boolean }).cancelled = true; },
    step: () => {
      const next = timers.filter((x) => !x.cancelled).sort((x, y) => x.at - y.at)[0];
      if (!next) return false;
      timers.splice(timers.indexOf(next), 1);
      now = next.at;
      next.callback();
      return true;
    },
  };
}

test('birthdaySpray with an injected clock and random: paced SPRAY_PACING_MS apart on that clock, and the ports are the random source\'s, the same for the same draws', async () => {
  const sprayOnce = async (): Promise<{ ports: number[]; at: number[] }> => {
    const clock = steppedClock();
    // A fixed sequence with one repeat: the repeated port is drawn again, not probed twice.
    const draws = [0, 0.5, 0.5, 0.999_999, 0.25];
    let i = 0;
    const ports: number[] = [];
    const at: number[] = [];
    const done = birthdaySpray({
      send: (_data, to) => { ports.push(to.port); at.push(clock.now()); }, session: SESSION, key: KEY, address: '203.0.113.7', family: 4,
      signal: new AbortController().signal, probes: 4, clock, random: () => draws[i++]!,
    });
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      if (!clock.step()) break;
    }
    assert.equal(await done, 4);
    return { ports, at };
  };
  const first = await sprayOnce();
  assert.deepEqual(first.ports, [1024, 1024 + Math.floor(0.5 * 64512), 65535, 1024 + Math.floor(0.25 * 64512)]);
  assert.deepEqual(first.at, [0, SPRAY_PACING_MS, 2 * SPRAY_PACING_MS, 3 * SPRAY_PACING_MS]);
  assert.deepEqual(await sprayOnce(), first);
});

/** A check of the session, as the easy side's spray or check session sends it. */
function check(key: Uint8Array): Uint8Array {
  return encodeMessage({ method: Method.Binding, messageClass: MessageClass.Request, transactionId: randomBytes(12), attributes: [{ type: AttrType.Username, value: new TextEncoder().encode(SESSION) }] },
    { integrity: { key, algorithm: 'sha256' }, fingerprint: true });
}

test('birthdaySockets: every socket sends to the easy side; a forged probe is ignored; the socket a genuine probe reaches is answered and handed over, the rest closed', async (t) => {
  const easy = dgram.createSocket('udp4');
  t.after(() => easy.close());
  easy.bind(0, '127.0.0.1');
  await once(easy, 'listening');
  const to: TransportAddress = { family: 4, address: '127.0.0.1', port: easy.address().port };
  const sources = new Set<number>();
  const firstChecks = new Promise<void>((resolve) => {
    easy.on('message', (data, rinfo) => {
      const message = decodeMessage(data);
      if (message.messageClass !== MessageClass.Request) return;
      assert.ok(verifyIntegrity(message, KEY));
      sources.add(rinfo.port);
      if (sources.size === 8) resolve();
    });
  });
  const controller = new AbortController();
  t.after(() => controller.abort());
  const hit = birthdaySockets({ session: SESSION, key: KEY, to, bindAddress: '127.0.0.1', signal: controller.signal, sockets: 8 });
  await firstChecks;
  const [target, other] = [...sources];
  // From the right address but with the wrong key: not a probe of this session.
  easy.send(check(new Uint8Array(32).fill(9)), other!, '127.0.0.1');
  const answered = new Promise<Uint8Array>((resolve) => easy.on('message', (data, rinfo) => { if (rinfo.port === target) { const m = decodeMessage(data); if (m.messageClass === MessageClass.SuccessResponse) resolve(data); } }));
  easy.send(check(KEY), target!, '127.0.0.1');
  const found = await hit;
  t.after(() => found.socket.close());
  assert.equal(found.opened, 8);
  assert.equal(found.socket.address().port, target);
  assert.deepEqual(found.from, to);
  assert.ok(verifyIntegrity(decodeMessage(await answered), KEY), 'the probe is answered with an authenticated success response');
});

test('birthdaySockets gives up after its lifetime, closing every socket', async () => {
  const easy = dgram.createSocket('udp4');
  easy.bind(0, '127.0.0.1');
  await once(easy, 'listening');
  try {
    const to: TransportAddress = { family: 4, address: '127.0.0.1', port: easy.address().port };
    await assert.rejects(birthdaySockets({ session: SESSION, key: KEY, to, bindAddress: '127.0.0.1', signal: new AbortController().signal, sockets: 4, lifetimeMs: 200 }),
      { code: 'ERR_TRANSPORT', message: /no probe reached any of 4 sockets/ });
  } finally {
    easy.close();
  }
});

test('birthdaySockets takes its sockets from createSocket and its resends and lifetime from clock', async () => {
  const easy = dgram.createSocket('udp4');
  easy.bind(0, '127.0.0.1');
  await once(easy, 'listening');
  const made: dgram.Socket[] = [];
  const clock = steppedClock();
  let received = 0;
  easy.on('message', () => { received++; });
  try {
    const to: TransportAddress = { family: 4, address: '127.0.0.1', port: easy.address().port };
    const hit = birthdaySockets({
      session: SESSION, key: KEY, to, bindAddress: '127.0.0.1', signal: new AbortController().signal, sockets: 3, clock,
      createSocket: (type) => { const socket = dgram.createSocket(type); made.push(socket); return socket; },
    });
    hit.catch(() => undefined);
    // Real sockets, but no real timer: the two resends and the lifetime run only on `clock`.
    const until = async (count: number): Promise<void> => {
      for (let i = 0; received < count && i < 400; i++) await new Promise((resolve) => setTimeout(resolve, 5));
      assert.equal(received, count);
    };
    await until(3);
    assert.equal(made.length, 3);
    for (const [i, at] of HARD_RESEND_MS.entries()) {
      assert.ok(clock.step());
      assert.equal(clock.now(), at);
      await until(3 * (i + 2));
    }
    assert.ok(clock.step());
    assert.equal(clock.now(), HARD_LIFETIME_MS);
    await assert.rejects(hit, { code: 'ERR_TRANSPORT', message: /no probe reached any of 3 sockets/ });
  } finally {
    easy.close();
  }
});

const publicHost = { type: 'host' as const, transport: 'udp' as const, address: { family: 4 as const, address: '203.0.113.20', port: 4000 }, priority: 1 };
const privateHost = { ...publicHost, address: { family: 4 as const, address: '10.0.1.2', port: 4000 } };
const srflx = { ...publicHost, type: 'srflx' as const, address: { family: 4 as const, address: '203.0.113.30', port: 5000 } };

function instruction(overrides: Partial<PunchInstruction>): PunchInstruction {
  const none = { udp: false, tcp: false };
  return {
    session: SESSION, peer: 'x', role: 'controlling', remoteCandidates: [], localCandidates: [], remoteTcpCandidates: [], localTcpCandidates: [],
    remoteCapabilities: [], transport: 'auto', key: KEY, startAt: 0, remoteReachable: none, localReachable: none, remoteTcpListen: [], ...overrides,
  };
}

test('birthdaySide: exactly one side random per destination, aiming at the other side\'s srflx, or its public host address when it has no NAT', () => {
  const random = 'random-per-destination' as const;
  assert.deepEqual(birthdaySide(instruction({ localNatMapping: random, remoteCandidates: [privateHost, srflx] })), { side: 'hard', to: srflx.address });
  assert.deepEqual(birthdaySide(instruction({ remoteNatMapping: random, remoteCandidates: [privateHost, srflx] })), { side: 'easy', to: srflx.address });
  // A stateful firewall in front of a public address signs that address as a host candidate.
  assert.deepEqual(birthdaySide(instruction({ localNatMapping: random, remoteCandidates: [publicHost] })), { side: 'hard', to: publicHost.address });
  assert.equal(birthdaySide(instruction({ localNatMapping: random, remoteCandidates: [privateHost] })), undefined, 'nothing public to aim at');
  assert.equal(birthdaySide(instruction({ localNatMapping: random, remoteNatMapping: random, remoteCandidates: [srflx] })), undefined, 'both random: the relay');
  assert.equal(birthdaySide(instruction({ remoteCandidates: [srflx] })), undefined, 'neither random: ordinary punching');
});
