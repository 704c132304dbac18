import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../support/cli.js';
import { loopbackServer, scratch, startCli } from '../support/loopback-cli.js';

/** `--bind IP` on the commands that run a peer: its sockets, and the one host candidate it offers. */
const PEER = 'ah4ytbnkeoro34qprv2gqnc5vebpxztoiyafb4bpvnjm4uqycouu6bdq';
/** Never contacted: every case below fails before the peer reaches for the server. */
const NOWHERE = 'ws://127.0.0.1:1/';

test('listen and connect with --bind 127.0.0.1 meet over loopback only: direct-udp between 127.0.0.1 endpoints, data intact', async (t) => {
  const server = await loopbackServer(t);
  const dir = await scratch(t);
  const listen = startCli(t, 'listen', ['listen', '--server', server, '--key', join(dir, 'l.key'), '--once', '--bind', '127.0.0.1', '--json']);
  const id = String((await listen.until((e) => e['event'] === 'ready', 'ready'))['id']);
  listen.child.stdin!.end('from the listener');
  const connect = startCli(t, 'connect', ['connect', id, '--server', server, '--key', join(dir, 'c.key'), '--bind', '127.0.0.1', '--json']);
  connect.child.stdin!.end('from the connector;');
  assert.equal(await connect.exited(30_000), 0, connect.stderr());
  assert.equal(await listen.exited(30_000), 0, listen.stderr());
  // Without --bind a host with other interfaces offers them too, and the pair may meet on one
  // of those (a LAN or IPv6 host candidate): here each side has only 127.0.0.1 to offer.
  for (const side of [connect, listen]) {
    const connected = side.events.find((e) => e['event'] === 'connected');
    assert.ok(connected, side.stderr());
    assert.equal(connected['path'], 'direct-udp', side.stderr());
    assert.match(String(connected['remote']), /^127\.0\.0\.1:\d+$/, side.stderr());
  }
  assert.equal(connect.received(), 'from the listener'.length);
  assert.equal(listen.received(), 'from the connector;'.length);
});

test('--bind that is not an IPv4 address is a usage error (exit 2, one line saying what to give) for every command that runs a peer', async (t) => {
  const dir = await scratch(t);
  const file = join(dir, 'file.txt');
  await writeFile(file, 'x');
  const commands: string[][] = [
    ['listen', '--server', NOWHERE],
    ['connect', PEER, '--server', NOWHERE],
    ['send', PEER, file, '--server', NOWHERE],
    ['receive', '--server', NOWHERE, '--out', dir],
    ['expose', '8080', '--server', NOWHERE],
    ['forward', PEER, '--listen', '0', '--server', NOWHERE],
  ];
  const cases: [string, RegExp][] = [
    ['::1', /is an IPv6 address \(the peer binds IPv4 sockets; leave --bind out to use IPv6 too\); give one of this host's IPv4 addresses, e\.g\. --bind 127\.0\.0\.1$/],
    ['localhost', /is not an IP address; give one of this host's IPv4 addresses, e\.g\. --bind 127\.0\.0\.1$/],
    ['', /is not an IP address;/],
  ];
  for (const argv of commands) {
    for (const [value, expected] of cases) {
      const result = await runCli(...argv, '--key', join(dir, 'key'), '--bind', value);
      const what = `${argv[0]} --bind ${JSON.stringify(value)}`;
      assert.equal(result.code, 2, `${what}: ${result.stderr}`);
      assert.equal(result.stderr.trim().split('\n').length, 1, `${what}: more than one line:\n${result.stderr}`);
      assert.ok(result.stderr.startsWith(`natpunch ${argv[0]}: --bind ${JSON.stringify(value)} `), `${what}: ${result.stderr}`);
      assert.match(result.stderr.trim(), expected, what);
    }
  }
});

test('--bind to an address this host does not have fails with ERR_LISTEN naming it, before the rendezvous server is contacted', async (t) => {
  const dir = await scratch(t);
  // 198.18.0.0/15 is for benchmarking (RFC 2544): no host here has it, and bind(2) fails at once.
  const text = await runCli('connect', PEER, '--server', NOWHERE, '--key', join(dir, 'key'), '--bind', '198.18.255.254');
  assert.equal(text.code, 1, text.stderr);
  assert.equal(text.stderr.trim(), 'natpunch: peer: cannot bind UDP to 198.18.255.254: this host has no such address (give one of its own: ip address lists them)');
  const json = await runCli('listen', '--server', NOWHERE, '--key', join(dir, 'key'), '--bind', '198.18.255.254', '--json');
  assert.equal(json.code, 1, json.stderr);
  const event = JSON.parse(json.stderr.trim()) as Record<string, string>;
  assert.equal(event['event'], 'error');
  assert.equal(event['code'], 'ERR_LISTEN');
  assert.match(event['message']!, /198\.18\.255\.254/);
});
