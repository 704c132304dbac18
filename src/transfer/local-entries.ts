/**
 * What the sender offers: each FILE argument under its base name, a directory with everything
 * in it (sorted, so two runs offer the same list and resume lines up). Links inside a directory
 * are skipped — following them could send what lies outside it — and named in `skipped`; a link
 * given as an argument is the user's own choice and is followed.
 */
import { lstat, opendir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { Stats } from 'node:fs';
import { TransferError } from './errors.js';
import { unsafeReason } from './entry-path.js';
import type { Entry } from './messages.js';

/** An entry to send: what the receiver is offered, and where this side reads it. */
export interface LocalEntry extends Entry {
  /** Where the sender reads it (files only). */
  source: string;
}

/** What {@link collectEntries} found. */
export interface LocalEntries {
  /** The entries to pass to {@link sendFiles}, directories before what is in them. */
  entries: LocalEntry[];
  /** Paths left out: links and special files found inside directories. */
  skipped: string[];
}

/** Throws TransferError 'read-failed' naming the path for a missing or unreadable argument, a name given twice, or a name a receiver would refuse. */
export async function collectEntries(paths: readonly string[]): Promise<LocalEntries> {
  const entries: LocalEntry[] = [];
  const skipped: string[] = [];
  const names = new Map<string, string>();
  for (const path of paths) {
    const absolute = resolve(path);
    const name = basename(absolute);
    if (name === '') throw new TransferError('read-failed', `${path}: the root directory has no name to send it under; send what is in it`);
    const earlier = names.get(name);
    if (earlier !== undefined) throw new TransferError('read-failed', `${earlier} and ${path} would both arrive as ${JSON.stringify(name)}; send them one at a time`);
    names.set(name, path);
    let stats: Stats;
    try {
      stats = await stat(absolute);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file or directory; check the path'
        : code === 'EACCES' ? 'permission denied; send files this user can read' : (error as Error).message;
      throw new TransferError('read-failed', `${path}: ${why}`, { cause: error });
    }
    if (stats.isFile()) entries.push(entry('file', name, absolute, stats));
    else if (stats.isDirectory()) await walk(absolute, name, stats, entries, skipped);
    else throw new TransferError('read-failed', `${path} is neither a file nor a directory`);
  }
  for (const e of entries) {
    const why = unsafeReason(e.path);
    if (why !== null) throw new TransferError('read-failed', `${e.source}: cannot be sent as ${JSON.stringify(e.path)}: ${why}; rename it`);
  }
  return { entries, skipped };
}

async function walk(directory: string, path: string, stats: Stats, entries: LocalEntry[], skipped: string[]): Promise<void> {
  entries.push(entry('directory', path, directory, stats));
  const names: string[] = [];
  try {
    for await (const dirent of await opendir(directory)) names.push(dirent.name);
  } catch (error) {
    throw new TransferError('read-failed', `${directory}: ${(error as Error).message}`, { cause: error });
  }
  names.sort();
  for (const name of names) {
    const source = join(directory, name);
    const child = await lstat(source);
    if (child.isFile()) entries.push(entry('file', `${path}/${name}`, source, child));
    else if (child.isDirectory()) await walk(source, `${path}/${name}`, child, entries, skipped);
    else skipped.push(source);
  }
}

function entry(kind: Entry['kind'], path: string, source: string, stats: Stats): LocalEntry {
  return { kind, path, source, mode: stats.mode & 0o7777, size: kind === 'file' ? stats.size : 0 };
}
