import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { natpunch, runCli, waitForLine } from '../support/cli.js';

const run = runCli;

test('usage errors exit 2 and say what to do next', async () => {
  const unknown = await run('frobnicate');
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'.*natpunch help/);
  const missing = await run('check');
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--stun HOST\[:PORT\] is required/);
  const badPort = await run('serve', '--port', 'eighty');
  assert.equal(badPort.code, 2);
  assert.match(badPort.stderr, /--port "eighty" is not a whole number/);
  const twice = await run('serve', '--address', '127.0.0.1', '--address', '127.0.0.1');
  assert.equal(twice.code, 2);
  assert.match(twice.stderr, /--address 127\.0\.0\.1, 127\.0\.0\.1: each address once/);
  const badFlag = await run('check', '--stun', '127.0.0.1', '--bogus');
  assert.equal(badFlag.code, 2);
});

test('natpunch COMMAND --help prints that command\'s usage and exits 0, without running it', async () => {
  for (const [command, flag] of [['serve', '--help'], ['check', '-h'], ['connect', '--help'], ['listen', '--help'], ['id', '-h']] as const) {
    const help = await run(command, flag);
    assert.equal(help.code, 0, `${command} ${flag}: ${help.stderr}`);
    assert.match(help.stdout, new RegExp(`^usage: natpunch ${command}\\b`), command);
  }
  // Without --help, the same missing argument is still a usage error.
  assert.equal((await run('connect')).code, 2);
});

test('natpunch id creates a 0600 key once and prints the same id every time', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'natpunch-id-'));
  try {
    const key = join(dir, 'sub', 'key');
    const first = await run('id', '--key', key);
    assert.equal(first.code, 0, first.stderr);
    const second = await run('id', '--key', key);
    assert.equal(second.stdout, first.stdout);
    assert.match(first.stdout.trim(), /^[a-z0-9]+$/);
    assert.equal((await stat(key)).mode & 0o777, 0o600);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('serve logs ready, and check --json against it prints the contract fields', async () => {
  const [node, ...rest] = natpunch('serve', '--address', '127.0.0.1', '--alt-address', '127.0.0.2', '--port', '0', '--alt-port', '0', '--http-port', '0', '--no-relay');
  const serve = spawn(node!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const line = await waitForLine(serve, /ready/);
    const port = /127\.0\.0\.1:(\d+)/.exec(line)![1]!;
    const check = await run('check', '--stun', `127.0.0.1:${port}`, '--json');
    assert.equal(check.code, 0, check.stderr);
    const report = JSON.parse(check.stdout) as Record<string, unknown>;
    for (const key of ['mappedAddress', 'natted', 'mapping', 'filtering', 'rfc3489', 'portAllocation', 'hairpin']) {
      assert.ok(key in report, `missing ${key}`);
    }
    assert.equal(report.rfc3489, 'open-internet');
    assert.equal(report.natted, false);
  } finally {
    serve.kill('SIGTERM');
  }
});

test('serve given --address twice answers STUN on both, IPv4 and IPv6, on one port', async () => {
  const [node, ...rest] = natpunch('serve', '--address', '127.0.0.1', '--address', '::1', '--port', '0', '--http-port', '0', '--no-relay');
  const serve = spawn(node!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const line = await waitForLine(serve, /ready/);
    const port = /127\.0\.0\.1:(\d+)/.exec(line)![1]!;
    assert.match(line, new RegExp(`\\[::1\\]:${port}`), 'STUN on the IPv6 address, same port');
    assert.match(line, /rendezvous ws:\/\/127\.0\.0\.1:\d+\/ ws:\/\/\[::1\]:\d+\//);
    const check = await run('check', '--stun', `[::1]:${port}`, '--json');
    assert.equal(check.code, 0, check.stderr);
    assert.match(String((JSON.parse(check.stdout) as Record<string, unknown>).mappedAddress), /^\[::1\]:\d+$/);
  } finally {
    serve.kill('SIGTERM');
  }
});
