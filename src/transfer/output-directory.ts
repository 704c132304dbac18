/**
 * The receiver's side of the file system: everything it creates lies under one output
 * directory, reached one component at a time without following a symbolic link (a link planted
 * in the directory, or a name that is a link, is refused rather than followed out of it). Files
 * are written under a temporary name beside their final one and linked into place only when
 * complete and verified, never over an existing name.
 */
import { constants, createReadStream, type Stats } from 'node:fs';
import { link, lstat, mkdir, open, realpath, rename, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { createHash, type Hash } from 'node:crypto';
import { join } from 'node:path';
import { TransferError } from './errors.js';
import { PARTIAL_SUFFIX } from './entry-path.js';

/** A file the receiver is about to receive: where it goes, and what of it is already there. */
export interface PreparedFile {
  /** The entry's path as offered (for messages). */
  path: string;
  final: string;
  partial: string;
  /** Bytes of the partial file already there (0: none, or longer than the offered file); the size when `complete`. */
  offset: number;
  /** A file of this name and size is in place already: the same file if its hash is the sender's. */
  complete: boolean;
  /** SHA-256 state over those bytes (made only when there are some: an offer may list 100 000 files). */
  hash: Hash | undefined;
}

/** Told before a side hashes bytes already at the receiver (it takes a read of them): `path`, how many bytes. */
export type CheckListener = (path: string, bytes: number) => void;

const errno = (error: unknown): string | undefined => (error as NodeJS.ErrnoException)?.code;

export class OutputDirectory {
  /** The directory, with any link in its own path resolved (the user chose it). */
  readonly root: string;
  /** Directories that gained a name, to fsync once at the end. */
  readonly #touched = new Set<string>();
  /** Directories this transfer made, in order: removed again if its offer is refused. */
  readonly #created: string[] = [];

  private constructor(root: string) {
    this.root = root;
  }

  /** Open DIR; throws TransferError 'write-failed' when it is missing or not a directory. */
  static async open(directory: string): Promise<OutputDirectory> {
    let root: string;
    try {
      root = await realpath(directory);
    } catch (error) {
      throw new TransferError('write-failed', `output directory ${directory}: ${(error as Error).message}; create it or pass another --out DIR`, { cause: error });
    }
    if (!(await lstat(root)).isDirectory()) throw new TransferError('write-failed', `output directory ${directory} is not a directory; pass another --out DIR`);
    return new OutputDirectory(root);
  }

  /** Make the directories `components` names (each under the one before), none through a link. */
  async ensureDirectory(components: readonly string[], mode = 0o755): Promise<string> {
    let current = this.root;
    for (const [i, name] of components.entries()) {
      const next = join(current, name);
      const shown = components.slice(0, i + 1).join('/');
      let stats = await lstatOrNull(next);
      if (stats === null) {
        // The entry's own bits for the last one, but always writable by us: files go in next.
        try {
          await mkdir(next, { mode: i === components.length - 1 ? (mode & 0o777) | 0o700 : 0o755 });
          this.#created.push(next);
          this.#touched.add(current);
          current = next;
          continue;
        } catch (error) {
          if (errno(error) !== 'EEXIST') throw writeFailed(shown, this.root, error);
          stats = await lstat(next);
        }
      }
      if (stats.isSymbolicLink()) throw new TransferError('unsafe-path', `refused ${JSON.stringify(shown)}: it is a symbolic link in ${this.root}, and natpunch does not follow links in the output directory; remove it or receive into another --out DIR`);
      if (!stats.isDirectory()) throw new TransferError('exists', `${JSON.stringify(shown)} already exists in ${this.root} as a file, where the offer has a directory; move it away or receive into another --out DIR`);
      current = next;
    }
    return current;
  }

  /**
   * Find out what of an offered file is already here: a partial file from an earlier run, or the
   * whole file (a name in place with the offered size: hashed, for the sender to compare). Throws
   * 'exists' when the name is taken by something else.
   */
  async prepareFile(path: string, components: readonly string[], size: number, onCheck?: CheckListener): Promise<PreparedFile> {
    const name = components[components.length - 1]!;
    const parent = await this.ensureDirectory(components.slice(0, -1));
    const final = join(parent, name);
    const partial = join(parent, `.${name}${PARTIAL_SUFFIX}`);
    const there = await lstatOrNull(final);
    if (there !== null) {
      if (!there.isFile() || there.size !== size) throw existsError(path, this.root);
      // Perhaps the same file, from a run that was interrupted after it: the sender decides.
      onCheck?.(path, size);
      return { path, final, partial, offset: size, complete: true, hash: await hashPrefix(final, size) };
    }
    const stats = await lstatOrNull(partial);
    // None, or longer than the file now offered (another file of that name): start again.
    if (stats === null || (stats.isFile() && (stats.size > size || stats.size === 0))) return { path, final, partial, offset: 0, complete: false, hash: undefined };
    if (!stats.isFile()) throw new TransferError('unsafe-path', `refused ${JSON.stringify(path)}: its temporary name ${partial} is not a regular file; remove it`);
    onCheck?.(path, stats.size);
    return { path, final, partial, offset: stats.size, complete: false, hash: await hashPrefix(partial, stats.size) };
  }

  /** Open the temporary file for writing from `offset` (what is beyond it is cut). */
  async openPartial(file: PreparedFile, offset: number): Promise<FileHandle> {
    try {
      const handle = await open(file.partial, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
      try {
        await handle.truncate(offset);
      } catch (error) {
        await handle.close();
        throw error;
      }
      this.#touched.add(join(file.partial, '..'));
      return handle;
    } catch (error) {
      throw writeFailed(file.path, this.root, error);
    }
  }

  /**
   * The file is complete and verified: flush it to disk, give it its mode, and link it under its
   * final name — link(2) fails when the name exists, where rename(2) would replace it — then drop
   * the temporary name.
   */
  async finish(file: PreparedFile, handle: FileHandle, mode: number): Promise<void> {
    try {
      await handle.sync();
      await handle.chmod(mode & 0o777);
    } catch (error) {
      throw writeFailed(file.path, this.root, error);
    } finally {
      await handle.close().catch(() => undefined);
    }
    try {
      await linkNoReplace(file.partial, file.final);
    } catch (error) {
      if (errno(error) === 'EEXIST') throw new TransferError('exists', `${JSON.stringify(file.path)} appeared in ${this.root} while it was being received; the received copy stays as ${file.partial}`);
      throw writeFailed(file.path, this.root, error);
    }
  }

  /** The offer was refused: remove the directories made for it (only while still empty). */
  async removeCreated(): Promise<void> {
    for (const directory of this.#created.reverse()) await rmdir(directory).catch(() => undefined);
    this.#created.length = 0;
  }

  /** Drop a temporary file whose bytes proved wrong. */
  async discard(file: PreparedFile): Promise<void> {
    await unlink(file.partial).catch(() => undefined);
  }

  /** fsync every directory that gained a name, so the new names survive a crash as the data does. */
  async syncDirectories(): Promise<void> {
    for (const directory of this.#touched) {
      const handle = await open(directory, constants.O_RDONLY | constants.O_DIRECTORY);
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    this.#touched.clear();
  }
}

/** Hard-link `from` as `to` (fails with EEXIST when `to` exists) and remove `from`; rename when the file system has no hard links. */
async function linkNoReplace(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (error) {
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EXDEV'].includes(errno(error) ?? '')) throw error;
    // vfat and the like: check, then rename (a narrow race, on file systems that leave no choice).
    if (await exists(to)) throw Object.assign(new Error(`${to} exists`), { code: 'EEXIST' });
    await rename(from, to);
    return;
  }
  await unlink(from);
}

/** The refusal when an offered name is taken in the output directory. */
export function existsError(path: string, root: string): TransferError {
  return new TransferError('exists', `${JSON.stringify(path)} already exists in ${root} with other content; natpunch never overwrites: move it away or receive into another --out DIR`);
}

async function lstatOrNull(path: string): Promise<Stats | null> {
  return lstat(path).catch((error: unknown) => (errno(error) === 'ENOENT' ? null : Promise.reject(error)));
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if (errno(error) === 'ENOENT') return false;
    throw error;
  }
}

/** SHA-256 state over the first `length` bytes of `path` (opened without following a link). */
async function hashPrefix(path: string, length: number): Promise<Hash> {
  const hash = createHash('sha256');
  if (length === 0) return hash;
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    for await (const chunk of createReadStream('', { fd: handle.fd, autoClose: false, start: 0, end: length - 1 })) hash.update(chunk as Buffer);
  } finally {
    await handle.close();
  }
  return hash;
}

export function writeFailed(path: string, root: string, error: unknown): TransferError {
  const cause = (error as Error)?.message ?? String(error);
  return new TransferError('write-failed', `could not write ${JSON.stringify(path)} in ${root}: ${cause}; make room (or fix the directory) and send again: what arrived is kept and resumed`, { cause: error });
}
