import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, realpath, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { VERSION } from '../../src/version.js';
import { cliChild } from '../support/loopback-cli.js';
import { ProcessOutput, stopProcess } from '../support/process.js';

/**
 * The npm package a user installs: `npm pack` builds the native addons and carries them prebuilt
 * (scripts/prebuild.mjs), so installing the tarball needs no compiler, and the installed CLI
 * works: --version, its addons loaded from the prebuilds, a connection over loopback.
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const run = promisify(execFile);
const ADDONS = ['tcp-ttl', 'udp-batch', 'aead'];

/** npm's own settings from the `npm test` this runs under would leak into the installs below. */
function cleanEnv(path: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/^npm_/i.test(key)) env[key] = value;
  return { ...env, PATH: path };
}

const noCompiler = process.platform !== 'linux' ? `packing prebuilt addons needs Linux (this is ${process.platform})`
  : spawnSync('cc', ['--version']).status !== 0 ? 'no C compiler on PATH: npm pack builds the prebuilt addons with one (Debian: build-essential)' : undefined;
if (noCompiler) console.log(`# skipped: ${noCompiler}`);

test('npm pack carries prebuilt addons; the tarball installs with no compiler and connects on loopback', { skip: noCompiler, timeout: 600_000 }, async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'natpunch-pack-'));
  t.after(() => rm(work, { recursive: true, force: true }));

  // 1. The tarball, made the way a release is: prepack builds the addons and copies them.
  const { stdout: packed } = await run('npm', ['pack', '--pack-destination', work, '--json'], { cwd: ROOT, env: cleanEnv(process.env['PATH'] ?? ''), maxBuffer: 64 << 20, timeout: 400_000 });
  const [{ filename, files }] = JSON.parse(packed.slice(packed.indexOf('['))) as [{ filename: string; files: { path: string }[] }];
  const paths = files.map((f) => f.path);
  for (const addon of ADDONS) {
    assert.ok(paths.some((p) => p.startsWith(`native/${addon}/prebuilds/linux-${process.arch}/`)), `the package carries native/${addon} prebuilt: ${paths.filter((p) => p.startsWith('native/')).join(', ')}`);
  }
  assert.ok(!paths.some((p) => p.includes('/build/')), 'no node-gyp build directory in the package');

  // 2. Installed into an empty project whose PATH has node, npm and sh (npm runs scripts with it)
  // only: no cc, make or python3.
  const bin = join(work, 'bin');
  const project = join(work, 'project');
  await mkdir(bin);
  await mkdir(project);
  await symlink(process.execPath, join(bin, 'node'));
  await symlink('/bin/sh', join(bin, 'sh'));
  await symlink(await realpath(spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim()), join(bin, 'npm'));
  assert.notEqual(spawnSync('cc', ['--version'], { env: cleanEnv(bin) }).status, 0, 'no compiler on the install PATH');
  // --offline: tests contact no registry. natpunch's dependencies (and theirs) come packed from
  // this clone's node_modules: npm's cache may hold their tarballs, but not the registry's index
  // that resolving a version range needs, so an offline install of the tarball alone fails.
  const { stdout: tree } = await run('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, env: cleanEnv(process.env['PATH'] ?? ''), maxBuffer: 16 << 20, timeout: 120_000 });
  const dependencies = tree.split('\n').map((line) => line.trim()).filter((dir) => dir !== '' && dir !== ROOT.replace(/\/$/, ''));
  assert.ok(dependencies.some((dir) => dir.endsWith('/ws')), `npm ls lists natpunch's dependencies: ${tree}`);
  const tarballs: string[] = [];
  for (const dir of dependencies) {
    const { stdout: depPacked } = await run('npm', ['pack', dir, '--pack-destination', work, '--json', '--ignore-scripts'], { cwd: work, env: cleanEnv(process.env['PATH'] ?? ''), timeout: 120_000 });
    const [{ filename: tarball }] = JSON.parse(depPacked.slice(depPacked.indexOf('['))) as [{ filename: string }];
    tarballs.push(join(work, tarball));
  }
  const install = await run(join(bin, 'npm'), ['install', '--offline', '--no-audit', '--no-fund', '--foreground-scripts', join(work, filename), ...tarballs], {
    cwd: project, env: cleanEnv(bin), maxBuffer: 64 << 20, timeout: 300_000,
  });
  const installed = join(project, 'node_modules', 'natpunch');
  assert.doesNotMatch(install.stderr, /did not build/, install.stderr);
  for (const addon of ADDONS) assert.ok(!existsSync(join(installed, 'native', addon, 'build')), `native/${addon} was not compiled at install`);

  // 3. The installed CLI.
  const cli = join(installed, 'dist', 'src', 'cli', 'main.js');
  const natpunch = (...args: string[]): string[] => [process.execPath, cli, ...args];
  assert.equal((await run(process.execPath, [cli, '--version'])).stdout.trim(), VERSION);
  const { stdout: verbose } = await run(process.execPath, [cli, 'version', '--verbose'], { env: cleanEnv(bin) });
  for (const addon of ADDONS) assert.match(verbose, new RegExp(`${addon}\\s+loaded \\(prebuilt for linux-${process.arch}\\)`), verbose);

  const [node, ...serveArgs] = natpunch('serve', '--address', '127.0.0.1', '--alt-address', '127.0.0.2', '--port', '0', '--alt-port', '0', '--http-port', '0', '--no-relay');
  const serve = new ProcessOutput(spawn(node!, serveArgs, { stdio: ['ignore', 'pipe', 'pipe'] }), 'installed natpunch serve');
  t.after(() => stopProcess(serve.child));
  const [ready] = await serve.waitFor([/ready/]);
  const server = /rendezvous (ws:\/\/\S+)/.exec(ready!)?.[1];
  assert.ok(server, `a rendezvous URL in: ${ready}`);
  const start = (name: string, ...args: string[]): ReturnType<typeof cliChild> => {
    const [n, ...rest] = natpunch(...args);
    return cliChild(t, spawn(n!, rest, { stdio: ['pipe', 'pipe', 'pipe'] }), name);
  };
  const listen = start('listen', 'listen', '--server', server, '--key', join(work, 'l.key'), '--once', '--json');
  const id = String((await listen.until((e) => e['event'] === 'ready', 'ready'))['id']);
  const connect = start('connect', 'connect', id, '--server', server, '--key', join(work, 'c.key'), '--json');
  const connected = await connect.until((e) => e['event'] === 'connected', 'connected');
  assert.match(String(connected['path']), /^direct-/);
  const payload = Buffer.alloc(256 * 1024, 7);
  connect.child.stdin!.end(payload);
  listen.child.stdin!.end();
  assert.equal(await listen.exited(60_000), 0, listen.stderr());
  assert.equal(listen.received(), payload.length, 'every byte arrived through the installed package');
  assert.equal(await connect.exited(60_000), 0, connect.stderr());
  assert.deepEqual((await readdir(join(installed, 'native', 'aead', 'prebuilds'))), [`linux-${process.arch}`]);
});
