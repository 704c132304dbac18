import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import { NatpunchServer } from '../../src/server/natpunch-server.js';
import { Method, MessageClass, encodeMessage, newTransactionId } from '../../src/wire/index.js';
import { parsePrometheusText, sampleValue, type MetricFamily } from '../support/prometheus-text.js';
import { once, until } from '../support/wait.js';

/**
 * natpunch_limits_hit_total counts the limits the STUN port and the HTTP listeners enforce by
 * themselves (before any protocol could name them in an error), each equal to the server's own
 * counter: a UDP flood over the per-source rate, STUN/TCP and HTTP connections over the
 * per-address caps. On loopback, each attacker on an address of its own (127/8 is all local).
 */

/** GET /metrics from `localAddress`, on a connection of its own that is closed afterwards. */
async function scrape(server: NatpunchServer, localAddress: string): Promise<Map<string, MetricFamily>> {
  const url = new URL(server.rendezvousUrl!.replace('ws:', 'http:') + 'metrics');
  const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get(url, { agent: false, localAddress }, resolve).on('error', reject);
  });
  assert.equal(response.statusCode, 200);
  let text = '';
  for await (const chunk of response) text += String(chunk);
  return parsePrometheusText(text);
}

const LIMITS = ['stun-rate-limited', 'stun-tcp-connections', 'stun-tcp-frame-timeout', 'stun-tcp-output', 'http-connections', 'http-header-timeout'];

test('STUN and HTTP limits hit are counted under natpunch_limits_hit_total, each as the server counted it', { timeout: 60_000 }, async () => {
  const server = await NatpunchServer.listen({
    address: '127.0.0.1', port: 0, httpPort: 0, relay: { builtIn: false },
    stunLimits: { udpRatePerSource: 5, maxTcpConnectionsPerAddress: 1 },
    httpLimits: { headersTimeoutMs: 60_000, maxConnectionsPerAddress: 2 },
  });
  const udp = dgram.createSocket('udp4');
  const held: net.Socket[] = [];
  try {
    const before = await scrape(server, '127.0.0.9');
    for (const limit of LIMITS) assert.equal(sampleValue(before, 'natpunch_limits_hit_total', { limit }), 0, `${limit} is there from the start, at 0`);

    // Finding 4's flood, small: 50 Bindings from one source, 5 a second allowed (bursts of 10).
    udp.bind(0, '127.0.0.1');
    await once(udp, 'listening');
    const stunPort = server.stun.addresses[0]!.port;
    for (let i = 0; i < 50; i++) udp.send(encodeMessage({ method: Method.Binding, messageClass: MessageClass.Request, transactionId: newTransactionId(), attributes: [] }), stunPort, '127.0.0.1');
    await until(() => server.stun.stats.responses + server.stun.stats.rateLimited >= 50, 'the server handled the flood', { seen: () => JSON.stringify(server.stun.stats) });

    // One STUN/TCP connection per address: the second from 127.0.0.2 is closed at once.
    const connect = async (port: number, localAddress: string): Promise<net.Socket> => {
      const socket = net.connect({ port, host: '127.0.0.1', localAddress });
      socket.on('error', () => undefined);
      held.push(socket);
      await once(socket, 'connect');
      return socket;
    };
    await connect(stunPort, '127.0.0.2');
    await until(() => server.stun.stats.tcpConnections === 1, 'the first STUN/TCP connection is held');
    await once(await connect(stunPort, '127.0.0.2'), 'close', { timeoutMs: 10_000 });

    // Two HTTP connections per address: the third from 127.0.0.3 is closed at once.
    const httpPort = Number(new URL(server.rendezvousUrl!).port);
    for (let i = 0; i < 2; i++) await connect(httpPort, '127.0.0.3');
    await until(() => server.httpStats.connections === 2, 'two silent HTTP connections', { seen: () => JSON.stringify(server.httpStats) });
    await once(await connect(httpPort, '127.0.0.3'), 'close', { timeoutMs: 10_000 });

    const after = await scrape(server, '127.0.0.9');
    const hit = (limit: string): number | undefined => sampleValue(after, 'natpunch_limits_hit_total', { limit });
    assert.ok(server.stun.stats.rateLimited > 0, JSON.stringify(server.stun.stats));
    assert.equal(hit('stun-rate-limited'), server.stun.stats.rateLimited);
    assert.equal(hit('stun-tcp-connections'), 1);
    assert.equal(server.stun.stats.tcpRefused, 1);
    assert.equal(hit('http-connections'), 1);
    assert.equal(server.httpStats.refused, 1);
    for (const limit of ['stun-tcp-frame-timeout', 'stun-tcp-output', 'http-header-timeout']) assert.equal(hit(limit), 0, limit);
  } finally {
    for (const socket of held) socket.destroy();
    udp.close();
    await server.close();
  }
});
