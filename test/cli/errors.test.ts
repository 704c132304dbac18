import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { once } from '../support/wait.js';
import { runCli } from '../support/cli.js';
import { loopbackServer, scratch } from '../support/loopback-cli.js';

/**
 * Every failure a user can cause, through the real CLI: one line naming what failed and what to
 * do next, exit 2 for usage and 1 for the rest, a JSON error event under --json, and no stack.
 * Each text below is pinned (issue 10, "Errors").
 */
const PEER = 'ah4ytbnkeoro34qprv2gqnc5vebpxztoiyafb4bpvnjm4uqycouu6bdq';
/**
 * A host name that fails to resolve without asking any DNS server: its first label is 64
 * octets, one more than DNS allows (RFC 1035 §2.3.4), so the resolver refuses to build the
 * query (ENOTFOUND) and no packet leaves this host. (A name like no-such-host.invalid would be
 * sent to the system's nameserver: an outside host.)
 */
const UNRESOLVABLE = `${'a'.repeat(64)}.invalid`;

function assertOneLine(stderr: string): void {
  assert.doesNotMatch(stderr, /\n\s+at /, `a stack trace:\n${stderr}`);
  assert.equal(stderr.trim().split('\n').length, 1, `more than one line:\n${stderr}`);
  assert.doesNotMatch(stderr, /natpunch: natpunch/, 'a doubled prefix');
}

test('check against a port where nothing listens: the server did not answer, exit 1 (not "UDP blocked", not 0)', async () => {
  const result = await runCli('check', '--stun', '127.0.0.1:1');
  assert.equal(result.code, 1, result.stderr);
  assert.equal(result.stdout, '');
  assert.equal(result.stderr.trim(), 'natpunch check: the STUN server 127.0.0.1:1 did not answer over UDP, nor over TCP (connection refused); '
    + 'check the address and port, and that a STUN server (natpunch serve) runs there');
  const json = await runCli('check', '--stun', '127.0.0.1:1', '--json');
  assert.equal(json.code, 1);
  assert.equal(JSON.parse(json.stderr).code, 'ERR_UNREACHABLE');
});

test('check with a name that does not resolve exits 1 (a runtime failure, not a usage error)', async () => {
  const result = await runCli('check', '--stun', UNRESOLVABLE);
  assert.equal(result.code, 1, result.stderr);
  assert.equal(result.stderr, `natpunch check: cannot resolve ${UNRESOLVABLE} (ENOTFOUND); check the spelling, or give an IP address\n`);
});

test('--server without a ws:// scheme, or with another one, is a usage error saying what to write', async (t) => {
  const dir = await scratch(t);
  const key = join(dir, 'key');
  const bare = await runCli('connect', PEER, '--server', '127.0.0.1:28080', '--key', key);
  assert.equal(bare.code, 2);
  assert.equal(bare.stderr, 'natpunch connect: --server "127.0.0.1:28080" has no scheme; use ws://127.0.0.1:28080/\n');
  const udp = await runCli('listen', '--server', 'udp://127.0.0.1:28080/', '--key', key);
  assert.equal(udp.code, 2);
  assert.equal(udp.stderr, 'natpunch listen: --server "udp://127.0.0.1:28080/": the rendezvous server speaks WebSocket, expected ws://HOST:8080/, or wss://HOST/ behind TLS\n');
  const json = await runCli('connect', PEER, '--server', 'udp://x/', '--key', key, '--json');
  assert.equal(json.code, 2);
  assert.equal(JSON.parse(json.stderr).code, 'ERR_USAGE');
});

test('every way of not reaching the rendezvous server names the URL and the cause, as a JSON event under --json', async (t) => {
  const server = await loopbackServer(t);
  const dir = await scratch(t);
  const key = join(dir, 'key');
  const port = new URL(server).port;
  // A TCP port that accepts and says nothing: not a rendezvous server.
  const silent = createServer((socket) => socket.on('error', () => undefined));
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  t.after(() => silent.close());
  const silentPort = (silent.address() as { port: number }).port;
  const cases: [string, RegExp][] = [
    ['ws://127.0.0.1:1/', /^natpunch: cannot reach the rendezvous server ws:\/\/127\.0\.0\.1:1\/: connection refused; check the host and port, and that natpunch serve runs there$/],
    [`ws://${UNRESOLVABLE}:8080/`, new RegExp(`^natpunch: cannot reach the rendezvous server ws://${UNRESOLVABLE.replace('.', '\\.')}:8080/: the host name does not resolve \\(ENOTFOUND\\); check the spelling, or use an IP address$`)],
    [`wss://127.0.0.1:${port}/`, new RegExp(`^natpunch: cannot reach the rendezvous server wss://127\\.0\\.0\\.1:${port}/: the TLS handshake failed: the server does not speak TLS on that port \\(use ws:// for a plain server\\)$`)],
    [`ws://127.0.0.1:${port}/wrong/path`, new RegExp(`^natpunch: cannot reach the rendezvous server ws://127\\.0\\.0\\.1:${port}/wrong/path: it answered HTTP 404 instead of a WebSocket upgrade; check the URL's path \\(natpunch serve takes WebSocket connections at /\\)$`)],
  ];
  for (const [url, expected] of cases) {
    const text = await runCli('connect', PEER, '--server', url, '--key', key);
    assert.equal(text.code, 1, `${url}: ${text.stderr}`);
    assertOneLine(text.stderr);
    assert.match(text.stderr.trim(), expected);
    const json = await runCli('listen', '--server', url, '--key', key, '--json');
    assert.equal(json.code, 1, `${url}: ${json.stderr}`);
    const event = JSON.parse(json.stderr.trim()) as Record<string, string>;
    assert.equal(event['event'], 'error');
    assert.equal(event['code'], 'ERR_RENDEZVOUS');
    assert.ok(event['message']!.includes(url), event['message']);
  }
  // Something listens, but never upgrades: the handshake times out (10 s), named as such.
  const mute = await runCli('connect', PEER, '--server', `ws://127.0.0.1:${silentPort}/`, '--key', key);
  assert.equal(mute.code, 1);
  assert.match(mute.stderr, /cannot reach the rendezvous server ws:\/\/127\.0\.0\.1:\d+\/: no WebSocket answer in time: something listens there but it is not a rendezvous server/);
});

test('connect to a peer that is not listening says so and what to do', async (t) => {
  const server = await loopbackServer(t);
  const dir = await scratch(t);
  const result = await runCli('connect', PEER, '--server', server, '--key', join(dir, 'key'));
  assert.equal(result.code, 1);
  assert.equal(result.stderr, `natpunch: peer ${PEER} is not registered at the rendezvous server ${server}: start natpunch listen with the same --server on the other machine first, and check the id\n`);
});

test('serve on a port in use, or an address the host lacks, or a name: one line, no stack', async (t) => {
  const busy = createServer();
  busy.listen(0, '127.0.0.1');
  await once(busy, 'listening');
  t.after(() => busy.close());
  const port = String((busy.address() as { port: number }).port);
  const inUse = await runCli('serve', '--address', '127.0.0.1', '--port', '0', '--alt-port', '0', '--http-port', port, '--no-relay');
  assert.equal(inUse.code, 1);
  assertOneLine(inUse.stderr);
  assert.equal(inUse.stderr, `natpunch serve: cannot listen on TCP 127.0.0.1:${port}: the port is in use (another natpunch serve, or another server); stop it, or choose other ports (--port, --alt-port, --http-port)\n`);
  // 192.0.2.0/24 (TEST-NET-1, RFC 5737) is on no host's interface... except a lab's: use a rarer one.
  const absent = await runCli('serve', '--address', '203.0.113.254', '--port', '0', '--http-port', '0', '--no-relay');
  assert.equal(absent.code, 1);
  assertOneLine(absent.stderr);
  assert.match(absent.stderr, /^natpunch serve: cannot listen on UDP 203\.0\.113\.254(:0)?: this host has no such address; give one of its own \(ip address shows them\) to --address \/ --alt-address\n$/);
  const name = await runCli('serve', '--address', 'localhost');
  assert.equal(name.code, 2);
  assert.equal(name.stderr, 'natpunch serve: --address "localhost" is not an IP address (serve binds to one of this host\'s addresses)\n');
});

test('an unknown option is one balanced sentence pointing at the command\'s help', async () => {
  for (const command of ['connect', 'listen', 'check', 'serve', 'id']) {
    const result = await runCli(command, '--bogus');
    assert.equal(result.code, 2);
    assert.equal(result.stderr, `natpunch ${command}: unknown option --bogus; run 'natpunch ${command} --help' for the flags\n`);
  }
  const json = await runCli('connect', '--bogus', '--json');
  assert.equal(json.code, 2);
  assert.deepEqual(JSON.parse(json.stderr), { event: 'error', code: 'ERR_USAGE', message: 'natpunch connect: unknown option --bogus; run \'natpunch connect --help\' for the flags' });
});

test('a mistyped option names the flag it most likely meant', async () => {
  const typos: [string, string, string][] = [
    ['connect', '--sever', 'server'], ['connect', '--trasnport', 'transport'], ['listen', '--no-reprot', 'no-report'],
    ['listen', '--portmapping', 'port-mapping'], ['serve', '--alt-adress', 'alt-address'], ['send', '--jsno', 'json'],
  ];
  for (const [command, typo, meant] of typos) {
    const result = await runCli(command, typo);
    assert.equal(result.code, 2);
    assert.equal(result.stderr, `natpunch ${command}: unknown option ${typo} (did you mean --${meant}?); run 'natpunch ${command} --help' for the flags\n`);
  }
  // Nothing close: no guess.
  assert.doesNotMatch((await runCli('connect', '--x')).stderr, /did you mean/);
});

test('a flag named from habit, or a required value given bare, names the flag meant', async () => {
  // `check` asks a STUN server (--stun), where the other commands take --server.
  const habit: [string, string, string][] = [['check', '--server', 'stun'], ['check', '--stun-server', 'stun'], ['connect', '--rendezvous', 'server']];
  for (const [command, typed, meant] of habit) {
    const result = await runCli(command, typed, 'x');
    assert.equal(result.code, 2);
    assert.equal(result.stderr, `natpunch ${command}: unknown option ${typed} (did you mean --${meant}?); run 'natpunch ${command} --help' for the flags\n`);
  }
  const bare = await runCli('check', '127.0.0.1:3478');
  assert.equal(bare.code, 2);
  assert.equal(bare.stderr, 'natpunch check: unexpected argument "127.0.0.1:3478" (did you mean --stun 127.0.0.1:3478?); run \'natpunch check --help\' for the flags\n');
});

test('a mistyped command or lab subcommand names the one it most likely meant', async () => {
  const command = await runCli('conect');
  assert.equal(command.code, 2);
  assert.equal(command.stderr, "natpunch: unknown command 'conect' (did you mean 'connect'?). Run 'natpunch help' for the list.\n");
  const sub = await runCli('lab', 'matrx');
  assert.equal(sub.code, 2);
  assert.match(sub.stderr, /^natpunch lab: unknown subcommand "matrx" \(did you mean matrix\?\); use up, status, exec, matrix or down\./);
  // Nothing close: no guess.
  assert.doesNotMatch((await runCli('xyzzy')).stderr, /did you mean/);
});

test('a key file that cannot be written does not tell a user who gave --key to "pass --key FILE"', async () => {
  // A key path under a regular file: its "directory" cannot be created.
  const result = await runCli('id', '--key', join(process.execPath, 'key'));
  assert.equal(result.code, 1);
  assertOneLine(result.stderr);
  assert.doesNotMatch(result.stderr, /pass --key FILE/);
  assert.match(result.stderr, /key file .*\/node\/key \(ENOTDIR\).*use a key file elsewhere \(--key FILE, or NATPUNCH_HOME\)/);
});
