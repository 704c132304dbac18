import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import os from 'node:os';
import { checkAccess, isLoopback } from '../../src/metrics/access.js';
import { NatpunchServer } from '../../src/server/natpunch-server.js';
import { parsePrometheusText } from '../support/prometheus-text.js';

/**
 * Who may read /metrics, the dashboard and /healthz's details: loopback clients, and requests
 * with the --metrics-token as a bearer token. The rule as a function, then the real server
 * asked from a non-loopback source (this host's own LAN address: the packets never leave it).
 */

test('isLoopback: all of 127/8 and ::1, also IPv4-mapped; nothing else', () => {
  for (const ip of ['127.0.0.1', '127.0.0.2', '127.255.255.254', '::1', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1']) assert.equal(isLoopback(ip), true, ip);
  for (const ip of ['192.0.2.1', '10.0.0.1', '::ffff:192.0.2.1', '::', '0.0.0.0', 'fe80::1', '128.0.0.1', '', 'localhost', undefined]) assert.equal(isLoopback(ip), false, String(ip));
});

test('checkAccess: loopback always; elsewhere only with the right bearer token (401), or never without a token configured (403)', () => {
  const token = 'a-long-metrics-token-0123';
  assert.deepEqual(checkAccess('127.0.0.1', undefined, undefined), { allowed: true });
  assert.deepEqual(checkAccess('::1', undefined, token), { allowed: true });
  assert.deepEqual(checkAccess('192.0.2.7', `Bearer ${token}`, token), { allowed: true });
  assert.deepEqual(checkAccess('192.0.2.7', `bearer  ${token}`, token), { allowed: true }, 'the scheme is case-insensitive (RFC 9110 §11.1)');
  const table: [string | undefined, string | undefined, 401 | 403, RegExp][] = [
    [undefined, undefined, 403, /loopback clients only.*--metrics-token/],
    [`Bearer ${token}`, undefined, 403, /loopback clients only/],
    [undefined, token, 401, /send the token given to --metrics-token as Authorization: Bearer TOKEN/],
    [`Basic ${Buffer.from(`x:${token}`).toString('base64')}`, token, 401, /send the token/],
    [`Bearer ${token}x`, token, 401, /wrong bearer token/],
    ['Bearer short', token, 401, /wrong bearer token/],
  ];
  for (const [authorization, configured, status, message] of table) {
    const verdict = checkAccess('192.0.2.7', authorization, configured);
    assert.equal(verdict.allowed, false, `${authorization} with ${configured}`);
    if (!verdict.allowed) {
      assert.equal(verdict.status, status);
      assert.match(verdict.message, message);
    }
  }
});

/** An IPv4 address of this host that is not loopback, or undefined. */
function lanAddress(): string | undefined {
  return Object.values(os.networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
}

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: string }

/** GET `path` from `server`, from the local address `from`: http.request binds the client's source. */
function get(server: NatpunchServer, path: string, from: string, authorization?: string): Promise<Reply> {
  const url = new URL(server.rendezvousUrl!.replace('ws:', 'http:'));
  return new Promise((resolve, reject) => {
    const request = http.request({ host: url.hostname, port: url.port, path, localAddress: from, headers: authorization ? { authorization } : {}, timeout: 10_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => { body += chunk; });
      response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body }));
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${path} from ${from}: no answer within 10 s`)));
    request.on('error', reject);
    request.end();
  });
}

test('the real server, bound to a LAN address: a non-loopback client gets "ok" from /healthz and nothing else without the token; with it, everything', { timeout: 30_000 }, async (t) => {
  const lan = lanAddress();
  if (lan === undefined) return t.skip('this host has no non-loopback IPv4 address to bind the server to');
  const token = 'scrape-token-0123456789';
  const server = await NatpunchServer.listen({ address: lan, port: 0, httpPort: 0, metricsToken: token, relay: { builtIn: false } });
  const open = await NatpunchServer.listen({ address: lan, port: 0, httpPort: 0, relay: { builtIn: false } });
  try {
    // The source is this host's LAN address, not loopback, as the server sees it.
    const health = await get(server, '/healthz', lan);
    assert.equal(health.status, 200);
    assert.equal(health.body, 'ok\n', 'no version, no counters');
    for (const path of ['/metrics', '/', '/dashboard.json']) {
      const denied = await get(server, path, lan);
      assert.equal(denied.status, 401, path);
      assert.equal(denied.headers['www-authenticate'], 'Bearer realm="natpunch"');
      assert.doesNotMatch(denied.body, /natpunch_|<html|"peers"/, `${path}: nothing of the content`);
      assert.equal((await get(server, path, lan, 'Bearer wrong-token-0123456789')).status, 401, `${path} with a wrong token`);
      assert.equal((await get(open, path, lan, `Bearer ${token}`)).status, 403, `${path}: a server without --metrics-token serves loopback only`);
    }
    const metrics = await get(server, '/metrics', lan, `Bearer ${token}`);
    assert.equal(metrics.status, 200);
    assert.ok(parsePrometheusText(metrics.body).has('natpunch_rendezvous_peers'));
    const details = JSON.parse((await get(server, '/healthz', lan, `Bearer ${token}`)).body) as { ok: boolean; version: string; stun: unknown };
    assert.equal(details.ok, true);
    assert.equal(typeof details.version, 'string');
    assert.ok(details.stun);
    assert.match((await get(server, '/', lan, `Bearer ${token}`)).body, /<title>natpunch serve<\/title>/);

    // The same server asked from 127.0.0.1 (routed to the LAN address inside this host): loopback, allowed.
    assert.equal((await get(open, '/metrics', '127.0.0.1')).status, 200);
    assert.equal(JSON.parse((await get(open, '/healthz', '127.0.0.1')).body).ok, true);
  } finally {
    await server.close();
    await open.close();
  }
});

test('GET / without an upgrade is the dashboard; the WebSocket upgrade at / still reaches the rendezvous', { timeout: 30_000 }, async () => {
  const server = await NatpunchServer.listen({ address: '127.0.0.1', port: 0, httpPort: 0, relay: { builtIn: false } });
  try {
    const base = server.rendezvousUrl!.replace('ws:', 'http:');
    const page = await fetch(base);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'sha256-/);
    const html = await page.text();
    assert.doesNotMatch(html, /(src|href)=["']?(https?:)?\/\//, 'no external URL');
    const { WebSocket } = await import('ws');
    const ws = new WebSocket(server.rendezvousUrl!);
    const hello = await new Promise<{ type: string }>((resolve, reject) => {
      ws.once('message', (data) => resolve(JSON.parse(String(data)) as { type: string }));
      ws.once('error', reject);
    });
    ws.close();
    assert.equal(hello.type, 'hello');
    assert.equal((await fetch(`${base}nothing-here`)).status, 404);
    assert.equal((await fetch(`${base}metrics`, { method: 'POST' })).status, 405);
  } finally {
    await server.close();
  }
});
