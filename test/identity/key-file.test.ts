import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultKeyFile, KeyFileError, loadOrCreateIdentity } from '../../src/identity/key-file.js';

let root: string;
let counter = 0;
const fresh = (): string => join(root, `case-${++counter}`);

async function assertKeyFileError(file: string, pattern: RegExp): Promise<void> {
  await assert.rejects(loadOrCreateIdentity(file), (error: unknown) => {
    assert.ok(error instanceof KeyFileError, `expected KeyFileError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_KEY_FILE');
    assert.equal(error.path, file);
    assert.match(error.message, pattern);
    return true;
  });
}

describe('key files', { skip: process.platform === 'win32' && 'POSIX permissions' }, () => {
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'natpunch-key-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('are created on first use with mode 0600 in a new directory with mode 0700', async () => {
    const directory = fresh();
    const file = join(directory, 'nested', 'key');
    const identity = await loadOrCreateIdentity(file);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(join(directory, 'nested'))).mode & 0o777, 0o700);
    assert.match(await readFile(file, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
    assert.equal(identity.publicKey.length, 32);
  });

  it('give the same identity on every later load', async () => {
    const file = join(fresh(), 'key');
    const first = await loadOrCreateIdentity(file);
    const second = await loadOrCreateIdentity(file);
    assert.equal(second.peerId, first.peerId);
  });

  it('give one identity to concurrent first uses', async () => {
    const file = join(fresh(), 'key');
    const identities = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateIdentity(file)));
    assert.equal(new Set(identities.map((identity) => identity.peerId)).size, 1);
  });

  it('load a key written by another tool as PEM PKCS#8', async () => {
    const directory = fresh();
    await mkdir(directory);
    const { privateKey } = generateKeyPairSync('ed25519');
    const file = join(directory, 'key');
    await writeFile(file, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    const identity = await loadOrCreateIdentity(file);
    assert.equal(identity.privateKey.equals(privateKey), true);
  });

  it('are refused when group or others can read them, saying to chmod 600', async () => {
    const file = join(fresh(), 'key');
    await loadOrCreateIdentity(file);
    await chmod(file, 0o644);
    await assertKeyFileError(file, /mode 0644, expected 0600.*chmod 600/);
    await chmod(file, 0o640);
    await assertKeyFileError(file, /mode 0640/);
  });

  it('are refused when malformed, empty or of another key type, saying what to do', async () => {
    const directory = fresh();
    await mkdir(directory);
    const garbage = join(directory, 'garbage');
    await writeFile(garbage, 'hello\n', { mode: 0o600 });
    await assertKeyFileError(garbage, /not an Ed25519 private key in PEM PKCS#8 form.*move this one away/);
    const empty = join(directory, 'empty');
    await writeFile(empty, '', { mode: 0o600 });
    await assertKeyFileError(empty, /the file is empty/);
    const x25519 = join(directory, 'x25519');
    await writeFile(x25519, generateKeyPairSync('x25519').privateKey.export({ format: 'pem', type: 'pkcs8' }), {
      mode: 0o600,
    });
    await assertKeyFileError(x25519, /holds a x25519 key/);
  });

  it('are refused when the path is a directory or a symbolic link', async () => {
    const directory = fresh();
    await mkdir(join(directory, 'dir'), { recursive: true });
    await assertKeyFileError(join(directory, 'dir'), /not a regular file/);
    const real = join(directory, 'real');
    await loadOrCreateIdentity(real);
    await symlink(real, join(directory, 'link'));
    await assertKeyFileError(join(directory, 'link'), /symbolic link/);
  });

  it('default to $NATPUNCH_HOME/key, else ~/.natpunch/key', () => {
    assert.equal(defaultKeyFile({ NATPUNCH_HOME: '/srv/np' }), '/srv/np/key');
    assert.match(defaultKeyFile({}), /\.natpunch\/key$/);
  });
});
