import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * npm's install script (scripts/build-native.mjs) reports a failed addon build with its real
 * cause, taken from node-gyp's own output, rather than guessing "needs python3, make, ...". A
 * stand-in node-gyp (npm_config_node_gyp, as npm sets it) prints what the real one prints.
 * `--from-source`: a prebuilt addon left by `npm pack` (test/install/pack.test.ts) would
 * otherwise be used and node-gyp never run.
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SCRIPT = join(ROOT, 'scripts', 'build-native.mjs');

async function buildWith(gypOutput: string, code: number, ...flags: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'natpunch-gyp-'));
  try {
    const fake = join(dir, 'node-gyp.js');
    await writeFile(fake, `process.stderr.write(${JSON.stringify(gypOutput)}); process.exit(${code});`);
    const { stderr } = await promisify(execFile)(process.execPath, [SCRIPT, '--from-source', ...flags, 'aead'], { cwd: ROOT, env: { ...process.env, npm_config_node_gyp: fake }, timeout: 30_000 });
    return stderr;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const tail = [
  'gyp ERR! stack at go (/usr/lib/node_modules/npm/node_modules/node-gyp/lib/install.js:244:21)',
  'gyp ERR! System Linux 6.1', 'gyp ERR! command "/usr/bin/node" "node-gyp.js" "rebuild"', 'gyp ERR! cwd /x', 'gyp ERR! node -v v20.20.2', 'gyp ERR! not ok',
].join('\n');

test('headers that could not be downloaded are named as the cause, with node-gyp\'s telling lines (not its stack)', async () => {
  const stderr = await buildWith([
    'gyp info find Python using Python version 3.11.7 found at "/usr/bin/python3"',
    'gyp http GET https://nodejs.org/download/release/v20.20.2/node-v20.20.2-headers.tar.gz',
    'gyp WARN install got an error, rolling back install',
    'gyp ERR! configure error',
    'gyp ERR! stack Error: This is most likely not a problem with node-gyp or the package itself and',
    'gyp ERR! stack is related to network connectivity.', tail,
  ].join('\n'), 1);
  assert.match(stderr, /^natpunch: native datagram AEAD unavailable .*: native\/aead did not build: node-gyp could not download Node's headers/);
  assert.doesNotMatch(stderr, /Python|make|C compiler/, 'no guess about tools that are there');
  assert.match(stderr, /gyp http GET https:\/\/nodejs\.org/);
  assert.doesNotMatch(stderr, /stack at|node -v/);
});

test('a missing Python, make or compiler is named when node-gyp says so', async () => {
  assert.match(await buildWith(`gyp ERR! find Python\ngyp ERR! find Python Python is not set from command line\n${tail}`, 1), /did not build: no Python 3/);
  assert.match(await buildWith(`gyp ERR! build error\ngyp ERR! stack Error: not found: make\n${tail}`, 1), /did not build: no make/);
  assert.match(await buildWith(`make: cc: No such file or directory\n/bin/sh: 1: cc: not found\ngyp ERR! build error\n${tail}`, 1), /did not build: no C compiler/);
});

test('a build that works says nothing under npm install, and says so with --verbose-ok (setup.sh)', async () => {
  assert.equal(await buildWith('gyp info ok\n', 0), '');
  assert.equal(await buildWith('gyp info ok\n', 0, '--verbose-ok'), 'natpunch: native/aead built\n');
});

const prebuilt = join(ROOT, 'native', 'aead', 'prebuilds', `${process.platform}-${process.arch}`, 'aead.node');
const built = join(ROOT, 'native', 'aead', 'build', 'Release', 'aead.node');
const noAddon = existsSync(prebuilt) || existsSync(built) ? undefined : 'native/aead is not built here (no compiler?): nothing to use as a prebuilt addon';
if (noAddon) console.log(`# skipped: ${noAddon}`);

test('a prebuilt addon that loads is used and nothing is compiled; --from-source compiles anyway', { skip: noAddon }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'natpunch-gyp-'));
  const created = !existsSync(prebuilt);
  try {
    if (created) {
      await mkdir(dirname(prebuilt), { recursive: true });
      await copyFile(built, prebuilt);
    }
    const fake = join(dir, 'node-gyp.js');
    await writeFile(fake, `import { writeFileSync } from 'node:fs'; writeFileSync(${JSON.stringify(join(dir, 'ran'))}, ''); process.exit(1);`);
    await writeFile(join(dir, 'package.json'), '{"type":"module"}');
    const env = { ...process.env, npm_config_node_gyp: fake };
    const { stderr } = await promisify(execFile)(process.execPath, [SCRIPT, '--verbose-ok', 'aead'], { cwd: ROOT, env, timeout: 30_000 });
    assert.match(stderr, /native\/aead: using the prebuilt native\/aead\/prebuilds\//);
    assert.ok(!existsSync(join(dir, 'ran')), 'node-gyp did not run');
    const forced = await promisify(execFile)(process.execPath, [SCRIPT, '--from-source', 'aead'], { cwd: ROOT, env, timeout: 30_000 });
    assert.ok(existsSync(join(dir, 'ran')), 'node-gyp ran with --from-source');
    assert.match(forced.stderr, /native\/aead did not build/);
  } finally {
    if (created) await rm(dirname(dirname(prebuilt)), { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  }
});
