/**
 * The key file: where a machine keeps its identity between runs.
 *
 * Format: the Ed25519 private key as PEM PKCS#8 ("-----BEGIN PRIVATE KEY-----"), exactly what
 * node:crypto and `openssl genpkey -algorithm ed25519` write, so it can be inspected with
 * standard tools. Like ssh with its private keys, we refuse a file that group or others can
 * read: a leaked key lets anyone impersonate this peer.
 * @see RFC 8410 §7 (Ed25519 private keys in PKCS#8), RFC 7468 §10 (PEM)
 */
import { createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { link, mkdir, open, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { NatpunchError } from '../errors.js';
import { generateIdentity, identityFromPrivateKey, type Identity } from './identity.js';

/** The key file could not be read, parsed or created (`ERR_KEY_FILE`): wrong permissions, not a key, … */
export class KeyFileError extends NatpunchError {
  /** The key file's path. */
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('ERR_KEY_FILE', message, options);
    this.name = 'KeyFileError';
    this.path = path;
  }
}

/** A PEM Ed25519 key is ~120 bytes; anything much larger is not our file. */
const MAX_KEY_FILE_SIZE = 16 * 1024;
const FILE_MODE = 0o600;
const DIRECTORY_MODE = 0o700;

/** `$NATPUNCH_HOME/key`, else `~/.natpunch/key`. */
export function defaultKeyFile(env: NodeJS.ProcessEnv = process.env): string {
  const home = env['NATPUNCH_HOME'];
  return home ? join(home, 'key') : join(homedir(), '.natpunch', 'key');
}

/**
 * Loads the identity kept in `file` (default: defaultKeyFile()), creating a new one there on
 * first use: the directory with mode 0700 if missing, the file with mode 0600. Creation is
 * atomic and never overwrites: two processes racing on first use end up with the same key.
 * Throws KeyFileError (code ERR_KEY_FILE) for a file that is readable by group/others, not a
 * regular file, unreadable, or not an Ed25519 PEM PKCS#8 key; the message says what to do.
 */
export async function loadOrCreateIdentity(file: string = defaultKeyFile()): Promise<Identity> {
  const existing = await readKeyFile(file);
  if (existing) return existing;
  return createKeyFile(file);
}

/** The identity in `file`, or undefined if the file does not exist. */
async function readKeyFile(file: string): Promise<Identity | undefined> {
  let handle;
  try {
    handle = await open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') {
      throw new KeyFileError(file, `key file ${file} is a symbolic link; point --key at the real file instead`);
    }
    throw new KeyFileError(
      file,
      `cannot open key file ${file} (${code ?? String(error)}); check its permissions, or use a key file elsewhere (--key FILE, or NATPUNCH_HOME)`,
      {
        cause: error,
      },
    );
  }
  try {
    // fstat on the open handle, not stat on the path: no window for a swap between check and read.
    const stats = await handle.stat();
    if (!stats.isFile()) {
      throw new KeyFileError(file, `key file ${file} is not a regular file; remove it, or use a key file elsewhere (--key FILE, or NATPUNCH_HOME)`);
    }
    checkPermissions(file, stats.mode);
    if (stats.size > MAX_KEY_FILE_SIZE) {
      throw malformed(file, `it is ${stats.size} bytes, an Ed25519 PEM key is about 120`);
    }
    const pem = await handle.readFile({ encoding: 'utf8' });
    return identityFromPrivateKey(parsePem(file, pem));
  } finally {
    await handle.close();
  }
}

function checkPermissions(file: string, mode: number): void {
  // Windows has no POSIX permission bits to speak of; its ACLs are out of our reach here.
  if (process.platform === 'win32') return;
  if ((mode & 0o077) !== 0) {
    const octal = (mode & 0o777).toString(8).padStart(4, '0');
    throw new KeyFileError(
      file,
      `key file ${file} is accessible by group or others (mode ${octal}, expected 0600): ` +
        `run \`chmod 600 ${file}\`, and if others may have read it, move it away to create a new identity`,
    );
  }
}

function malformed(file: string, detail: string, cause?: unknown): KeyFileError {
  return new KeyFileError(
    file,
    `key file ${file} is not an Ed25519 private key in PEM PKCS#8 form (${detail}); ` +
      'point --key at the right file, or move this one away to create a new identity (that changes the peer id)',
    { cause },
  );
}

function parsePem(file: string, pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (error) {
    throw malformed(file, pem.trim() === '' ? 'the file is empty' : 'it does not parse as a PEM private key', error);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw malformed(file, `it holds a ${key.asymmetricKeyType ?? 'unknown'} key`);
  }
  return key;
}

async function createKeyFile(file: string): Promise<Identity> {
  try {
    await mkdir(dirname(file), { recursive: true, mode: DIRECTORY_MODE });
  } catch (error) {
    throw new KeyFileError(
      file,
      `cannot create the directory for key file ${file} (${(error as NodeJS.ErrnoException).code}); use a key file in a directory you can write (--key FILE, or NATPUNCH_HOME)`,
      {
        cause: error,
      },
    );
  }
  const identity = generateIdentity();
  const pem = identity.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  // Write a private temporary file in full, then link() it into place: link fails with EEXIST
  // instead of replacing, so a concurrent first run can never see a half-written key or lose
  // the race by having its key overwritten.
  const temporary = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const handle = await open(temporary, 'wx', FILE_MODE);
    try {
      await handle.writeFile(pem);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await link(temporary, file);
      return identity;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  } catch (error) {
    throw new KeyFileError(
      file,
      `cannot write key file ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)}); use a key file in a directory you can write (--key FILE, or NATPUNCH_HOME)`,
      {
        cause: error,
      },
    );
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
  // Another process created the key between our read and our link: theirs wins.
  const winner = await readKeyFile(file);
  if (!winner) throw new KeyFileError(file, `key file ${file} vanished while being created; run again`);
  return winner;
}
