import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once, until } from '../support/wait.js';
import { readAll } from '../support/streams.js';
import { primingTtlFromTrace, tcpTtlAddon, ttlPrimingAvailable, type TcpTtlAddon, type TraceHop } from '../../src/punch/tcp-ttl.js';

const expired = (ttl: number, offender: string): TraceHop => ({ ttl, type: 11, code: 0, offender });
const unreachable = (ttl: number, offender: string): TraceHop => ({ ttl, type: 3, code: 3, offender });

const P = '203.0.113.10';
const rules: { name: string; hops: TraceHop[]; want: ReturnType<typeof primingTtlFromTrace> }[] = [
  { name: 'the NAT owning P is the first hop and stays silent: TTL 2', hops: [], want: { ttl: 2, hops: 1 } },
  { name: 'the NAT owning P answers port unreachable at TTL 1: TTL 2', hops: [unreachable(1, P), unreachable(2, P)], want: { ttl: 2, hops: 1 } },
  { name: 'a home NAT answers time exceeded, the carrier NAT owns P: TTL 3', hops: [expired(1, '10.0.1.1')], want: { ttl: 3, hops: 2 } },
  { name: 'a silent hop before the last router that answers does not shorten the count', hops: [expired(2, '100.64.1.1')], want: { ttl: 4, hops: 3 } },
  {
    name: 'every probe expired: P is not on the path, no priming',
    hops: [1, 2, 3, 4, 5, 6, 7, 8].map((ttl) => expired(ttl, `198.51.100.${ttl}`)),
    want: { ttl: null, reason: 'the own public address 203.0.113.10 was not reached within 8 hops (every probe expired on the way)' },
  },
];

for (const rule of rules) {
  test(`priming rule: ${rule.name}`, () => {
    assert.deepEqual(primingTtlFromTrace(P, rule.hops, ['127.0.0.1', '10.0.1.2']), rule.want);
  });
}

test('priming rule: a public address that is this host\'s own means no NAT, nothing to prime', () => {
  assert.deepEqual(primingTtlFromTrace(P, [], ['127.0.0.1', P]), { ttl: null, reason: `no NAT: the public address ${P} is this host's own` });
});

test('NATPUNCH_NO_NATIVE=1 turns priming off, with the reason', () => {
  const before = process.env['NATPUNCH_NO_NATIVE'];
  process.env['NATPUNCH_NO_NATIVE'] = '1';
  try {
    assert.deepEqual(ttlPrimingAvailable(), { ok: false, reason: 'NATPUNCH_NO_NATIVE=1 turns the native addon off' });
    assert.equal(tcpTtlAddon(), undefined);
  } finally {
    if (before === undefined) delete process.env['NATPUNCH_NO_NATIVE'];
    else process.env['NATPUNCH_NO_NATIVE'] = before;
  }
});

function addonOrSkip(t: TestContext): TcpTtlAddon | undefined {
  const available = ttlPrimingAvailable();
  if (!available.ok) {
    console.log(`# SKIP ${t.name}: ${available.reason}`);
    t.skip(available.reason);
    return undefined;
  }
  return tcpTtlAddon();
}

test('the addon says which call failed where, with the errno name as code', (t) => {
  const addon = addonOrSkip(t);
  if (!addon) return;
  assert.throws(() => addon.primeSyn('127.0.0.1', 0, '127.0.0.1', 9, 0), { code: 'ERR_OUT_OF_RANGE', message: /TTL 1-255, got 127\.0\.0\.1:0 -> 127\.0\.0\.1:9 TTL 0/ });
  assert.throws(() => addon.primeSyn('192.0.2.77', 0, '127.0.0.1', 9, 2), { code: 'EADDRNOTAVAIL', message: /tcp-ttl: bind 192\.0\.2\.77:0 -> 127\.0\.0\.1:9 \(TTL 2\): / });
});

async function waitConnected(addon: TcpTtlAddon, fd: number): Promise<string> {
  let state = addon.connectState(fd);
  await until(() => (state = addon.connectState(fd)) !== 'connecting', `fd ${fd} to leave 'connecting'`, { intervalMs: 10, timeoutMs: 10_000 });
  return state;
}

test('a primed connect becomes a socket Node adopts once connected; data flows both ways', { timeout: 30_000 }, async (t) => {
  const addon = addonOrSkip(t);
  if (!addon) return;
  const server = net.createServer((peer) => peer.pipe(peer)).listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const port = (server.address() as net.AddressInfo).port;
    const fd = addon.primedConnect('127.0.0.1', 0, '127.0.0.1', port, 64);
    addon.endQuiet(fd);
    assert.equal(await waitConnected(addon, fd), 'connected');
    const socket = new net.Socket({ fd, readable: true, writable: true });
    assert.equal(socket.remotePort, port);
    socket.end('echo');
    assert.equal((await readAll(socket, { timeoutMs: 10_000 })).toString(), 'echo');
  } finally {
    server.close();
  }
});

test('a primed connect to a closed port ends in ECONNREFUSED', { timeout: 30_000 }, async (t) => {
  const addon = addonOrSkip(t);
  if (!addon) return;
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const fd = addon.primedConnect('127.0.0.1', 0, '127.0.0.1', port, 64);
  addon.endQuiet(fd);
  try {
    assert.equal(await waitConnected(addon, fd), 'ECONNREFUSED');
  } finally {
    addon.closeFd(fd);
  }
});
