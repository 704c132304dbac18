import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { NatpunchServer } from '../../src/server/natpunch-server.js';
import { createPeer, generateIdentity, type Connection, type Peer } from '../../src/index.js';
import { StunUdpClient } from '../../src/stun/udp-client.js';
import { StunTcpClient } from '../../src/stun/tcp-client.js';
import { TurnClient } from '../../src/turn/client.js';
import { openUdpTransport } from '../../src/turn/client-transport.js';
import { TurnError } from '../../src/errors.js';
import { parsePrometheusText, sampleValue, sumOf, type MetricFamily } from '../support/prometheus-text.js';
import { once, until } from '../support/wait.js';
import { REPORTED_TECHNIQUES } from '../../src/rendezvous/messages.js';
import { reportChannel } from '../../src/rendezvous/server-events.js';

/**
 * /metrics, scraped over HTTP like Prometheus does, counts exactly what real clients did: STUN
 * requests over UDP and TCP, a TURN allocation and the bytes it relayed each way, a quota hit,
 * registered peers and how each connect ended. Everything on loopback.
 */

async function scrape(server: NatpunchServer): Promise<Map<string, MetricFamily>> {
  const url = server.rendezvousUrl!.replace('ws:', 'http:') + 'metrics';
  const response = await fetch(url);
  assert.equal(response.status, 200, `GET ${url}: ${response.status}`);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await response.text());
}

test('the exposition is well-formed: every family has HELP and TYPE, process metrics included, counters end in _total', { timeout: 30_000 }, async () => {
  const server = await NatpunchServer.listen({ address: '127.0.0.1', port: 0, httpPort: 0 });
  try {
    const families = await scrape(server);
    for (const f of families.values()) {
      assert.ok(f.help && f.help.length > 10, `${f.name}: HELP says what it is`);
      assert.notEqual(f.type, 'untyped', `${f.name}: has a TYPE`);
      if (f.type === 'counter' && f.name.startsWith('natpunch_')) assert.match(f.name, /_total$/);
    }
    // prom-client's default metrics, on this server's own registry.
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      assert.ok(families.has(name), `${name} is exposed`);
    }
    assert.equal(sampleValue(families, 'natpunch_info', { version: (await import('../../src/version.js')).VERSION }), 1);
    assert.equal(sampleValue(families, 'natpunch_rendezvous_peers'), 0);
  } finally {
    await server.close();
  }
});

test('STUN requests by transport and outcome, and the relay\'s allocations, bytes each way and quota, are counted exactly; another server in the process counts nothing of it', { timeout: 60_000 }, async () => {
  const relay = { users: new Map([['alice', 'wonderland']]), allow: ['127.0.0.0/8'], userQuota: 1 };
  const server = await NatpunchServer.listen({ address: '127.0.0.1', port: 0, httpPort: 0, relay });
  const bystander = await NatpunchServer.listen({ address: '127.0.0.1', port: 0, httpPort: 0, relay });
  const stunAt = server.stun.addresses[0]!;
  const sockets: dgram.Socket[] = [];
  const udpSocket = async (address = '127.0.0.1'): Promise<dgram.Socket> => {
    const socket = dgram.createSocket('udp4');
    socket.bind(0, address);
    await once(socket, 'listening');
    sockets.push(socket);
    return socket;
  };
  const turns: TurnClient[] = [];
  try {
    // K = 5 over UDP, after one datagram that is not STUN (no magic cookie: dropped; its first
    // bits are not ChannelData's 0b01 either, which would hand it to the relay); J = 3 over TCP.
    const socket = await udpSocket();
    socket.send(Buffer.alloc(20), stunAt.port, stunAt.address);
    const udp = new StunUdpClient(socket);
    for (let i = 0; i < 5; i++) await udp.request(stunAt);
    const tcp = await StunTcpClient.connect(stunAt);
    for (let i = 0; i < 3; i++) await tcp.request();
    tcp.close();

    // A TURN allocation; a peer at 127.0.0.3 (not one of the server's addresses) echoes 4
    // datagrams of 100, 200, 300 and 400 bytes.
    const peer = await udpSocket('127.0.0.3');
    peer.on('message', (data, from) => peer.send(data, from.port, from.address));
    const client = new TurnClient(await openUdpTransport(stunAt));
    turns.push(client);
    await client.allocate({ username: 'alice', password: 'wonderland' });
    const peerAt = { family: 4 as const, address: '127.0.0.3', port: peer.address().port };
    await client.bindChannel(peerAt);
    let echoed = 0;
    const allEchoed = new Promise<void>((resolve) => client.on('data', (_from, data: Uint8Array) => {
      echoed += data.length;
      if (echoed === 1000) resolve();
    }));
    for (const size of [100, 200, 300, 400]) client.send(peerAt, Buffer.alloc(size, size / 100));
    await allEchoed;
    // A second allocation by the same user is over its quota of 1: 486.
    const second = new TurnClient(await openUdpTransport(stunAt));
    turns.push(second);
    await assert.rejects(second.allocate({ username: 'alice', password: 'wonderland' }), (e: unknown) => e instanceof TurnError && e.status === 486);

    const m = await scrape(server);
    assert.equal(sampleValue(m, 'natpunch_stun_requests_total', { transport: 'udp', outcome: 'success' }), 5);
    assert.equal(sampleValue(m, 'natpunch_stun_requests_total', { transport: 'tcp', outcome: 'success' }), 3);
    assert.equal(sampleValue(m, 'natpunch_stun_requests_total', { transport: 'udp', outcome: 'error' }), 0);
    assert.equal(sampleValue(m, 'natpunch_stun_requests_total', { transport: 'tls', outcome: 'success' }), 0);
    assert.equal(sampleValue(m, 'natpunch_stun_dropped_total'), 1);
    assert.equal(sampleValue(m, 'natpunch_turn_allocations'), 1);
    assert.equal(sampleValue(m, 'natpunch_turn_allocations_total'), 1);
    assert.equal(sampleValue(m, 'natpunch_turn_relayed_bytes_total', { direction: 'to-peer' }), 1000);
    assert.equal(sampleValue(m, 'natpunch_turn_relayed_bytes_total', { direction: 'to-client' }), 1000);
    assert.equal(sampleValue(m, 'natpunch_turn_relayed_packets_total'), 8);
    // The peer is not one of the server's allocations: nothing for the fast path.
    assert.equal(sampleValue(m, 'natpunch_turn_fast_path_rules'), 0);
    assert.equal(sampleValue(m, 'natpunch_turn_fast_path_packets_total'), 0);
    assert.equal(sampleValue(m, 'natpunch_limits_hit_total', { limit: 'relay-quota' }), 1);
    assert.equal(sampleValue(m, 'natpunch_turn_errors_total', { code: '486' }), 1);
    // Each Allocate is first challenged (401), as RFC 8656 §7.2 / RFC 8489 §9.2 have it.
    assert.equal(sampleValue(m, 'natpunch_turn_errors_total', { code: '401' }), 2);

    await client.close();
    const after = await scrape(server);
    assert.equal(sampleValue(after, 'natpunch_turn_allocations'), 0, 'the allocation is gone once the client closed it');
    assert.equal(sampleValue(after, 'natpunch_turn_allocations_total'), 1);

    const other = await scrape(bystander);
    assert.equal(sumOf(other, 'natpunch_stun_requests_total'), 0, 'the other server\'s registry saw none of it');
    assert.equal(sampleValue(other, 'natpunch_turn_allocations_total'), 0);
  } finally {
    await Promise.all(turns.map((t) => t.close()));
    for (const s of sockets) s.close();
    await server.close();
    await bystander.close();
  }
});

test('registered peers and brokered connects by outcome, reason, NAT class and technique are counted exactly', { timeout: 120_000 }, async () => {
  const server = await NatpunchServer.listen({ address: '127.0.0.1', altAddress: '127.0.0.2', port: 0, altPort: 0, httpPort: 0 });
  const peers: Peer[] = [];
  const peer = async (options: { accept?: () => string } = {}): Promise<Peer> => {
    const p = await createPeer({ server: server.rendezvousUrl!, identity: generateIdentity(), ...options });
    peers.push(p);
    return p;
  };
  const reported: unknown[] = [];
  const onReport = (message: unknown): void => { if ((message as { server: object }).server === server.rendezvous) reported.push(message); };
  reportChannel.subscribe(onReport);
  try {
    // N = 3 registered peers; c refuses everyone.
    const [a, b, c] = [await peer(), await peer(), await peer({ accept: () => 'not today' })];
    // M = 2 accepted connects; each initiator reports how its connection ended (path, technique, ms).
    const ended: { role: string; path: string; technique: string }[] = [];
    for (let i = 0; i < 2; i++) {
      const incoming = once(b, 'connection');
      const conn = await a.connect(b.peerId);
      const [other] = await incoming as [Connection];
      ended.push({ role: 'initiator', path: conn.path, technique: conn.technique });
      conn.destroy();
      other.destroy();
    }
    await assert.rejects(a.connect(c.peerId), /refused|not today/i);
    await assert.rejects(a.connect(generateIdentity().peerId), /not.*(found|registered)/i);

    const m = await scrape(server);
    assert.equal(sampleValue(m, 'natpunch_rendezvous_peers'), 3);
    assert.equal(sumOf(m, 'natpunch_rendezvous_registrations_total'), 3);
    // On loopback the dial-back from 127.0.0.2 reaches every peer at its proven 127.0.0.1 address
    // (not among the LAN addresses it signs as private endpoints): class "open".
    assert.equal(sampleValue(m, 'natpunch_rendezvous_registrations_total', { nat: 'open' }), 3);
    const both = { initiator_nat: 'open', target_nat: 'open' };
    assert.equal(sampleValue(m, 'natpunch_rendezvous_connects_total', { outcome: 'accepted', reason: 'none', ...both }), 2);
    assert.equal(sampleValue(m, 'natpunch_rendezvous_connects_total', { outcome: 'refused', reason: 'peer', ...both }), 1);
    assert.equal(sampleValue(m, 'natpunch_rendezvous_connects_total', { outcome: 'refused', reason: 'peer-not-found', initiator_nat: 'open', target_nat: 'unknown' }), 1);
    assert.equal(sumOf(m, 'natpunch_rendezvous_connects_total'), 4, 'each connect ended exactly once');
    assert.equal(sumOf(m, 'natpunch_rendezvous_punches_total'), 2);
    // connect() races UDP and TCP by default; both sides reachable, nothing predicted or mapped: a plain hole punch.
    assert.equal(sampleValue(m, 'natpunch_rendezvous_punches_total', { transport: 'auto', technique: 'hole-punch' }), 2);
    assert.equal(sampleValue(m, 'natpunch_rendezvous_errors_total', { code: 'peer-not-found' }), 1);
    assert.equal(sampleValue(m, 'natpunch_rendezvous_pending_connects'), 0);

    // The peers' reports (sent after each secure stream, so possibly after the connects returned).
    await until(() => reported.length >= 2, 'the initiator of both connects reported', { seen: () => `${reported.length} reports` });
    const reports = await scrape(server);
    assert.equal(sumOf(reports, 'natpunch_rendezvous_reports_total'), 2, 'one report per connection, from its initiator');
    const expected = new Map<string, number>();
    const initiatorPaths = new Map<string, number>();
    for (const e of ended) {
      const technique = REPORTED_TECHNIQUES.includes(e.technique) ? e.technique : 'other';
      const key = JSON.stringify({ role: e.role, outcome: 'connected', path: e.path, technique, ...both });
      expected.set(key, (expected.get(key) ?? 0) + 1);
      if (e.role === 'initiator') initiatorPaths.set(e.path, (initiatorPaths.get(e.path) ?? 0) + 1);
    }
    for (const [key, n] of expected) assert.equal(sampleValue(reports, 'natpunch_rendezvous_reports_total', JSON.parse(key) as Record<string, string>), n, key);
    // The connect-time histogram holds the initiators' times only, once per connection.
    for (const [path, n] of initiatorPaths) assert.equal(sampleValue(reports, 'natpunch_rendezvous_connect_seconds_count', { outcome: 'connected', path }), n, path);
    const counts = reports.get('natpunch_rendezvous_connect_seconds')?.samples.filter((x) => x.name === 'natpunch_rendezvous_connect_seconds_count') ?? [];
    assert.equal(counts.reduce((sum, x) => sum + x.value, 0), 2, 'no other times observed');

    await c.close();
    // The server learns of it when the WebSocket's close arrives.
    await until(() => server.rendezvous!.stats.peers === 2, 'the server noticed c leave', { seen: () => `${server.rendezvous!.stats.peers} peers` });
    const after = await scrape(server);
    assert.equal(sampleValue(after, 'natpunch_rendezvous_peers'), 2, 'a peer that left is no longer counted');
  } finally {
    reportChannel.unsubscribe(onReport);
    for (const p of peers) await p.close();
    await server.close();
  }
});
