import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { destroyPrefix } from '../../src/lab/index.js';
import { namespacesOfPrefix } from '../../src/lab/netns.js';
import { skipUnlessLab } from '../support/lab.js';

const LAB_CLI = new URL('../../src/cli/lab.js', import.meta.url).href;

/** `lab up` builds a whole lab in a few seconds; a command still running after this is hung. */
const LAB_COMMAND_TIMEOUT_MS = 60_000;

/**
 * Run labCommand in a child process (this process's stdout belongs to the test runner), the way
 * src/cli/main.ts does for `natpunch lab`, and collect its exit code and output. A hung command
 * is killed after LAB_COMMAND_TIMEOUT_MS: its code is then null and its stderr says so.
 */
function lab(...argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const script = `import { labCommand } from ${JSON.stringify(LAB_CLI)}; process.exitCode = await labCommand(process.argv.slice(1));`;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', script, ...argv], { timeout: LAB_COMMAND_TIMEOUT_MS, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      const killed = error?.killed === true ? `\n(natpunch lab ${argv.join(' ')}: killed, still running after ${LAB_COMMAND_TIMEOUT_MS} ms)` : '';
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr: stderr + killed });
    });
  });
}

test('natpunch lab without a subcommand prints usage and exits 2', async () => {
  const result = await lab();
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stdout, /natpunch lab up --a KIND/);
});

test('natpunch lab SUBCOMMAND --help prints the usage and exits 0, root or not', async () => {
  for (const sub of ['up', 'status', 'exec', 'matrix', 'down']) {
    const result = await lab(sub, '--help');
    assert.equal(result.code, 0, `${sub}: ${result.stderr}`);
    assert.match(result.stdout, /natpunch lab matrix \[--kinds/, sub);
  }
  // After exec's --, --help belongs to the command run in the lab.
  const exec = await lab('exec', 'nowhere', '--', 'ls', '--help');
  assert.doesNotMatch(exec.stdout, /^usage:/);
});

test('an unknown lab subcommand is a usage error naming the ones that exist', async () => {
  const result = await lab('start');
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /unknown subcommand "start"; use up, status, exec, matrix or down/);
});

test('lab up without --a, or with an unknown kind, exits 2 and says what to give', async (t) => {
  if (skipUnlessLab(t)) return;
  const missing = await lab('up', '--prefix', `np${process.pid}n960`);
  assert.equal(missing.code, 2, missing.stderr);
  assert.match(missing.stderr, /--a KIND is required/);
  const unknown = await lab('up', '--a', 'cone', '--prefix', `np${process.pid}n960`);
  assert.equal(unknown.code, 2, unknown.stderr);
  assert.match(unknown.stderr, /--a "cone" is not a NAT kind; use one of full-cone/);
  assert.deepEqual(namespacesOfPrefix(`np${process.pid}n960`), []);
});

test('lab up, status, exec and down drive one lab by prefix', { timeout: 60_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  const prefix = `np${process.pid}n961`;
  try {
    const up = await lab('up', '--a', 'symmetric-seq', '--b', 'full-cone', '--hairpin', '--prefix', prefix, '--json');
    assert.equal(up.code, 0, up.stderr);
    const state = JSON.parse(up.stdout) as { prefix: string; routers: Record<string, { kind: string; hairpin: boolean }>; hosts: Record<string, { addresses: string[] }> };
    assert.equal(state.prefix, prefix);
    assert.equal(state.routers.a?.kind, 'symmetric-seq');
    assert.equal(state.routers.b?.hairpin, true);
    assert.ok(existsSync(`/run/natpunch/lab-${prefix}.json`));
    assert.deepEqual(JSON.parse(readFileSync(`/run/natpunch/lab-${prefix}.json`, 'utf8')).hosts, state.hosts);

    const again = await lab('up', '--a', 'open', '--prefix', prefix);
    assert.equal(again.code, 2, 'a second lab on the same prefix is refused');
    assert.match(again.stderr, /already up; run natpunch lab down --prefix/);

    const status = await lab('status', '--prefix', prefix, '--json');
    assert.equal(status.code, 0, status.stderr);
    const report = JSON.parse(status.stdout) as { up: boolean; conntrackEntries: Record<string, number | null> };
    assert.equal(report.up, true);
    assert.equal(typeof report.conntrackEntries.a, 'number');

    // The command's exit code comes back; it runs inside the host's namespace.
    const a1 = state.hosts.a1!.addresses[0]!;
    assert.equal((await lab('exec', 'a1', '--prefix', prefix, '--', 'sh', '-c', `ip -4 -o address show dev eth0 | grep -q ' ${a1}/'`)).code, 0);
    assert.equal((await lab('exec', 'a1', '--prefix', prefix, '--', 'sh', '-c', 'exit 7')).code, 7);
    const noHost = await lab('exec', 'c1', '--prefix', prefix, '--', 'true');
    assert.equal(noHost.code, 2);
    assert.match(noHost.stderr, /has no host "c1"; choose one of server, a1, b1/);
    const noCommand = await lab('exec', 'a1', '--prefix', prefix);
    assert.equal(noCommand.code, 2);
    assert.match(noCommand.stderr, /put the command after --/);

    const down = await lab('down', '--prefix', prefix);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(namespacesOfPrefix(prefix), []);
    assert.ok(!existsSync(`/run/natpunch/lab-${prefix}.json`));
    const gone = await lab('status', '--prefix', prefix);
    assert.equal(gone.code, 2);
    assert.match(gone.stderr, /no lab with prefix .* is up/);
  } finally {
    await lab('down', '--prefix', prefix);
    await destroyPrefix(prefix);
  }
});
