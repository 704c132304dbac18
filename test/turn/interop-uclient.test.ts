import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { spawn } from 'node:child_process';
import { CLI } from '../support/cli.js';
import { ProcessOutput, skipUnlessInstalled, stopProcess } from '../support/process.js';

/**
 * Interop (issue 8): coturn's test client, turnutils_uclient 4.6.1, relays through natpunch's
 * TURN server (`natpunch serve`) on loopback: over UDP with channels (and RFC 5766 channel numbers above 0x4FFF,
 * which it picks), with Send indications (-s), over TCP (-t), TLS (-S), several clients at once
 * (-m 4), EVEN-PORT reservations (its RTP/RTCP pairs), and REST credentials (-W). The echoing
 * peer is a plain UDP socket in this process.
 */

const run = promisify(execFile);
const PEER_IP = '127.0.0.2';
const SECRET = 'rest-secret-for-tests';

interface Relay {
  port: number;
  tlsPort: number | undefined;
  peerPort: number;
  echoed: () => number;
  stats: () => Promise<{ allocationsCreated: number; packetsRelayed: number; errors: Record<string, number> }>;
}

/**
 * `natpunch serve` on 127.0.0.1 with a static user and a REST secret, allowed to relay to
 * loopback (refused by default) — but not to its own address, so the echo peer sits on 127.0.0.2.
 */
async function startRelay(t: TestContext, tls?: { cert: string; key: string }): Promise<Relay> {
  const args = ['serve', '--address', '127.0.0.1', '--port', '0', '--http-port', '0', '--turn-user', 'alice:wonderland', '--turn-secret', SECRET,
    '--relay-allow', '127.0.0.0/8', '--relay-user-quota', '100', ...(tls ? ['--tls-cert', tls.cert, '--tls-key', tls.key, '--tls-port', '0'] : [])];
  const serve = new ProcessOutput(spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }), 'natpunch serve');
  t.after(() => stopProcess(serve.child));
  const [ready] = await serve.waitFor([/ready/]);
  const port = Number(/STUN on udp\+tcp 127\.0\.0\.1:(\d+)/.exec(ready!)?.[1]);
  const tlsPort = /over TLS 127\.0\.0\.1:(\d+)/.exec(ready!)?.[1];
  const http = /rendezvous ws:\/\/(127\.0\.0\.1:\d+)\//.exec(ready!)?.[1];
  // uclient sends RTP to the peer port and RTCP to the port after it: two echoing sockets.
  const peers = await echoPair();
  let echoed = 0;
  for (const peer of peers) {
    peer.on('message', (data, rinfo) => {
      echoed++;
      peer.send(data, rinfo.port, rinfo.address);
    });
  }
  t.after(() => {
    for (const peer of peers) peer.close();
  });
  return {
    port, tlsPort: tlsPort ? Number(tlsPort) : undefined, peerPort: peers[0].address().port, echoed: () => echoed,
    stats: async () => ((await (await fetch(`http://${http}/healthz`)).json()) as { turn: Awaited<ReturnType<Relay['stats']>> }).turn,
  };
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
  socket.bind(port, PEER_IP);
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
    const report = await uclient([...flags, '-u', 'alice', '-w', 'wonderland', '-e', PEER_IP, '-r', String(relay.peerPort), '-n', '50', '-m', '4', '-l', '180', '-p', String(relay.port), '127.0.0.1']);
    assert.equal(report.sent, 200, report.output);
    assert.equal(report.received, 200, report.output);
    assert.equal(report.lost, 0);
    // Every message crossed the relay twice (client → peer, peer → client) and the peer saw each one.
    assert.ok(relay.echoed() >= 200, `the peer echoed ${relay.echoed()}`);
    const stats = await relay.stats();
    assert.ok(stats.packetsRelayed >= 400, JSON.stringify(stats));
    assert.ok(stats.allocationsCreated >= 4);
  });
}

test('turnutils_uclient with REST credentials (-W secret): relayed', { timeout: 120_000 }, async (t) => {
  if (skipUnlessInstalled(t, ['turnutils_uclient'], 'apt-get install -y coturn')) return;
  const relay = await startRelay(t);
  const report = await uclient(['-W', SECRET, '-u', 'bob', '-e', PEER_IP, '-r', String(relay.peerPort), '-n', '20', '-m', '2', '-p', String(relay.port), '127.0.0.1']);
  assert.equal(report.received, report.sent);
  assert.equal(report.sent, 40);
});

test('turnutils_uclient with a wrong password: no allocation, the server answered 401', { timeout: 120_000 }, async (t) => {
  if (skipUnlessInstalled(t, ['turnutils_uclient'], 'apt-get install -y coturn')) return;
  const relay = await startRelay(t);
  const outcome = await run('turnutils_uclient', ['-u', 'alice', '-w', 'not-it', '-e', PEER_IP, '-r', String(relay.peerPort), '-n', '5', '-p', String(relay.port), '127.0.0.1'], { timeout: 60_000 }).then(
    ({ stdout, stderr }) => stdout + stderr, (error: { stdout?: string; stderr?: string }) => `${error.stdout ?? ''}${error.stderr ?? ''}`);
  assert.match(outcome, /Cannot complete Allocation/);
  const stats = await relay.stats();
  assert.equal(stats.allocationsCreated, 0);
  assert.ok((stats.errors['401'] ?? 0) >= 2, JSON.stringify(stats.errors));
  assert.equal(relay.echoed(), 0);
});

test('turnutils_uclient over TLS (-t -S; -S alone means DTLS): relayed', { timeout: 120_000 }, async (t) => {
  if (skipUnlessInstalled(t, ['turnutils_uclient', 'openssl'], 'apt-get install -y coturn openssl')) return;
  const dir = await mkdtemp(join(tmpdir(), 'natpunch-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
  const relay = await startRelay(t, { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') });
  assert.ok(relay.tlsPort);
  const report = await uclient(['-t', '-S', '-u', 'alice', '-w', 'wonderland', '-e', PEER_IP, '-r', String(relay.peerPort), '-n', '20', '-m', '2', '-p', String(relay.tlsPort), '127.0.0.1']);
  assert.equal(report.sent, 40);
  assert.equal(report.received, 40);
});
