import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { StunServer } from '../../src/stun/server.js';
import { TurnServer, type PeerPolicy } from '../../src/turn/server.js';
import { skipUnlessInstalled } from '../support/process.js';

/**
 * Interop (issue 8): coturn's test client, turnutils_uclient 4.6.1, relays through natpunch's
 * TURN server on loopback: over UDP with channels (and RFC 5766 channel numbers above 0x4FFF,
 * which it picks), with Send indications (-s), over TCP (-t), TLS (-S), several clients at once
 * (-m 4), EVEN-PORT reservations (its RTP/RTCP pairs), and REST credentials (-W). The echoing
 * peer is a plain UDP socket in this process.
 */

const run = promisify(execFile);
const USERS = new Map([['alice', 'wonderland']]);
const SECRET = 'rest-secret';
/** The relay reaches the echo peer on loopback, which a real server refuses by default (src/turn/peer-policy.ts). */
const LOOPBACK_ALLOWED: PeerPolicy = { check: (ip) => (ip.startsWith('127.') ? { ok: true } : { ok: false, reason: `${ip} is not loopback` }) };

interface Relay {
  turn: TurnServer;
  port: number;
  tlsPort: number | undefined;
  peerPort: number;
  echoed: () => number;
}

async function startRelay(t: TestContext, tls?: { cert: string; key: string }): Promise<Relay> {
  const turn = new TurnServer({ relayAddress: '127.0.0.1', realm: 'natpunch.test', users: USERS, secret: SECRET, policy: LOOPBACK_ALLOWED, userQuota: 100 });
  const stun = await StunServer.listen({ address: '127.0.0.1', port: 0, shared: turn, ...(tls ? { tls: { ...tls, port: 0 } } : {}) });
  // uclient sends RTP to the peer port and RTCP to the port after it: two echoing sockets.
  const peers = await echoPair();
  let echoed = 0;
  for (const peer of peers) {
    peer.on('message', (data, rinfo) => {
      echoed++;
      peer.send(data, rinfo.port, rinfo.address);
    });
  }
  t.after(async () => {
    for (const peer of peers) peer.close();
    await turn.close();
    await stun.close();
  });
  return { turn, port: stun.addresses[0]!.port, tlsPort: stun.tlsAddress?.port, peerPort: peers[0].address().port, echoed: () => echoed };
}

/** Two UDP sockets on loopback at ports p and p + 1. */
async function echoPair(): Promise<[dgram.Socket, dgram.Socket]> {
  for (;;) {
    const first = await bound(0);
    const next = await bound(first.address().port + 1).catch(() => undefined);
    if (next) return [first, next];
    first.close();
  }
}

async function bound(port: number): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  socket.bind(port, '127.0.0.1');
  try {
    await once(socket, 'listening');
  } catch (error) {
    socket.close();
    throw error;
  }
  return socket;
}

interface UclientReport {
  sent: number;
  received: number;
  lost: number;
  output: string;
}

async function uclient(args: readonly string[]): Promise<UclientReport> {
  const { stdout, stderr } = await run('turnutils_uclient', args, { timeout: 60_000 });
  const output = stdout + stderr;
  const totals = /start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)/.exec(output); // the summary, not the per-second lines ("msz=N, tot_send_msgs=…")
  const lost = /Total lost packets (\d+)/.exec(output);
  assert.ok(totals && lost, `turnutils_uclient printed no totals:\n${output}`);
  return { sent: Number(totals[1]), received: Number(totals[2]), lost: Number(lost[1]), output };
}

const cases: Array<{ name: string; flags: string[] }> = [
  { name: 'UDP, channels', flags: [] },
  { name: 'UDP, Send/Data indications (-s)', flags: ['-s'] },
  { name: 'TCP, channels (-t)', flags: ['-t'] },
  { name: 'TCP, Send/Data indications (-t -s)', flags: ['-t', '-s'] },
];

for (const { name, flags } of cases) {
  test(`turnutils_uclient through the TURN server, ${name}, 4 clients: every message relayed and echoed back`, { timeout: 120_000 }, async (t) => {
    if (skipUnlessInstalled(t, ['turnutils_uclient'], 'apt-get install -y coturn')) return;
    const relay = await startRelay(t);
    const report = await uclient([...flags, '-u', 'alice', '-w', 'wonderland', '-e', '127.0.0.1', '-r', String(relay.peerPort), '-n', '50', '-m', '4', '-l', '180', '-p', String(relay.port), '127.0.0.1']);
    assert.equal(report.sent, 200, report.output);
    assert.equal(report.received, 200, report.output);
    assert.equal(report.lost, 0);
    // Every message crossed the relay twice (client → peer, peer → client) and the peer saw each one.
    assert.ok(relay.echoed() >= 200, `the peer echoed ${relay.echoed()}`);
    assert.ok(relay.turn.stats.packetsRelayed >= 400, JSON.stringify(relay.turn.stats));
    assert.ok(relay.turn.stats.allocationsCreated >= 4);
  });
}

test('turnutils_uclient with REST credentials (-W secret): relayed', { timeout: 120_000 }, async (t) => {
  if (skipUnlessInstalled(t, ['turnutils_uclient'], 'apt-get install -y coturn')) return;
  const relay = await startRelay(t);
  const report = await uclient(['-W', SECRET, '-u', 'bob', '-e', '127.0.0.1', '-r', String(relay.peerPort), '-n', '20', '-m', '2', '-p', String(relay.port), '127.0.0.1']);
  assert.equal(report.received, report.sent);
  assert.equal(report.sent, 40);
});

test('turnutils_uclient with a wrong password: no allocation, the server answered 401', { timeout: 120_000 }, async (t) => {
  if (skipUnlessInstalled(t, ['turnutils_uclient'], 'apt-get install -y coturn')) return;
  const relay = await startRelay(t);
  const outcome = await run('turnutils_uclient', ['-u', 'alice', '-w', 'not-it', '-e', '127.0.0.1', '-r', String(relay.peerPort), '-n', '5', '-p', String(relay.port), '127.0.0.1'], { timeout: 60_000 }).then(
    ({ stdout, stderr }) => stdout + stderr, (error: { stdout?: string; stderr?: string }) => `${error.stdout ?? ''}${error.stderr ?? ''}`);
  assert.match(outcome, /Cannot complete Allocation/);
  assert.equal(relay.turn.stats.allocationsCreated, 0);
  assert.ok((relay.turn.stats.errors[401] ?? 0) >= 2, JSON.stringify(relay.turn.stats.errors));
  assert.equal(relay.echoed(), 0);
});

test('turnutils_uclient over TLS (-t -S; -S alone means DTLS): relayed', { timeout: 120_000 }, async (t) => {
  if (skipUnlessInstalled(t, ['turnutils_uclient', 'openssl'], 'apt-get install -y coturn openssl')) return;
  const dir = await mkdtemp(join(tmpdir(), 'natpunch-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
  const relay = await startRelay(t, { cert: await readFile(join(dir, 'cert.pem'), 'utf8'), key: await readFile(join(dir, 'key.pem'), 'utf8') });
  assert.ok(relay.tlsPort);
  const report = await uclient(['-t', '-S', '-u', 'alice', '-w', 'wonderland', '-e', '127.0.0.1', '-r', String(relay.peerPort), '-n', '20', '-m', '2', '-p', String(relay.tlsPort), '127.0.0.1']);
  assert.equal(report.sent, 40);
  assert.equal(report.received, 40);
});
