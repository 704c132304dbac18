/**
 * Which entry paths a receiver accepts. An offer comes from another machine: its paths name
 * places under the receiver's output directory and nothing else. Relative, '/'-separated, no
 * empty, '.' or '..' component (so nothing climbs out), no control characters or backslashes
 * (a terminal escape in a name, or a Windows separator that means something else there), no
 * component so long that its temporary name would not fit, and no name of our own temporary
 * files. Symbolic links are the receiver's other half of this (output-directory.ts): it never
 * follows one that is already in the directory.
 */
import type { Entry } from './messages.js';
import { TransferError } from './errors.js';

/** Suffix of the temporary name a file is received under (`.NAME.natpunch-partial`). */
export const PARTIAL_SUFFIX = '.natpunch-partial';
/** Longest name component, bytes: NAME_MAX (255) less what the temporary name adds. */
export const MAX_NAME_BYTES = 255 - 1 - PARTIAL_SUFFIX.length;

const utf8 = new TextEncoder();

/** Why `path` is not a safe entry path, or null when it is. */
export function unsafeReason(path: string): string | null {
  if (path.length === 0) return 'the path is empty';
  if (path.startsWith('/')) return 'the path is absolute';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'the path holds a control character';
  if (path.includes('\\')) return 'the path holds a backslash';
  for (const component of path.split('/')) {
    if (component === '') return 'the path has an empty component (a doubled or trailing "/")';
    if (component === '.' || component === '..') return `the path has a "${component}" component`;
    if (utf8.encode(component).length > MAX_NAME_BYTES) return `a name is longer than ${MAX_NAME_BYTES} bytes`;
    if (component.endsWith(PARTIAL_SUFFIX)) return `a name ends with ${PARTIAL_SUFFIX}, which natpunch keeps for its temporary files`;
  }
  return null;
}

/** The path's components; throws TransferError 'unsafe-path' naming the path and why. */
export function entryComponents(path: string): string[] {
  const why = unsafeReason(path);
  if (why !== null) throw new TransferError('unsafe-path', `refused entry ${JSON.stringify(path)}: ${why}`);
  return path.split('/');
}

export interface OfferLimits {
  /** Most entries (files and directories) in one offer. Default 100 000. */
  maxEntries?: number;
  /** Most bytes in one offer (sum of file sizes). Default: no limit but the free space of the output directory. */
  maxTotalBytes?: number;
}

/**
 * Check a whole offer: every path safe, none twice, no entry inside a file entry, and within the
 * limits. Throws TransferError ('unsafe-path' or 'limit').
 */
export function checkOffer(entries: readonly Entry[], limits: OfferLimits & { defaultMaxEntries: number }): void {
  const maxEntries = limits.maxEntries ?? limits.defaultMaxEntries;
  if (entries.length > maxEntries) throw new TransferError('limit', `the offer lists ${entries.length} entries; this receiver takes at most ${maxEntries}`);
  const files = new Set<string>();
  const seen = new Set<string>();
  let total = 0;
  for (const entry of entries) {
    entryComponents(entry.path);
    if (seen.has(entry.path)) throw new TransferError('unsafe-path', `refused entry ${JSON.stringify(entry.path)}: listed twice`);
    seen.add(entry.path);
    if (entry.kind === 'file') {
      files.add(entry.path);
      total += entry.size;
    }
  }
  // Nothing may sit inside a file, whichever comes first in the offer.
  for (const entry of entries) {
    for (let at = entry.path.indexOf('/'); at !== -1; at = entry.path.indexOf('/', at + 1)) {
      const parent = entry.path.slice(0, at);
      if (files.has(parent)) throw new TransferError('unsafe-path', `refused entry ${JSON.stringify(entry.path)}: ${JSON.stringify(parent)} is a file in the same offer`);
    }
  }
  if (limits.maxTotalBytes !== undefined && total > limits.maxTotalBytes) {
    throw new TransferError('limit', `the offer is ${total} bytes; this receiver takes at most ${limits.maxTotalBytes}`);
  }
}
