/**
 * Who may connect to a peer: a list of peer ids (ssh's authorized_keys, one id a line), or a
 * function. Checked on the initiator's signed intent, after its signature verified (so the id is
 * the one the initiator proved to hold) and before anything is sent toward its candidates: a
 * peer not allowed gets a `refuse` through the rendezvous server and not one packet.
 */
import { readFile } from 'node:fs/promises';
import { UsageError } from '../errors.js';
import { normalizePeerId } from '../identity/index.js';

/** Peer ids allowed to connect, or a predicate on the initiator's (verified) peer id. */
export type AllowList = readonly string[] | ((peerId: string) => boolean | Promise<boolean>);

/** The refusal reason the initiator sees for a peer not on the list. */
export const NOT_ALLOWED = 'not on its allow-list';

/** A predicate from an AllowList; ids are checked (checksum) and normalised up front. */
export function allowPredicate(allow: AllowList): (peerId: string) => boolean | Promise<boolean> {
  if (typeof allow === 'function') return allow;
  const ids = new Set(allow.map((id) => normalizePeerId(id)));
  return (peerId) => ids.has(peerId);
}

/**
 * Parse an allowed-peers file: one peer id a line; blank lines and `#` comments (whole-line or
 * after the id) ignored, as in ssh's authorized_keys. A line that is not a peer id is a
 * UsageError naming the file and line.
 */
export function parseAllowFile(text: string, file: string): string[] {
  const ids: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const [id, ...rest] = line.split(/\s+/);
    if (rest.length > 0) throw new UsageError(`${file}:${index + 1}: one peer id per line, got ${JSON.stringify(line)} (comments start with #)`);
    try {
      ids.push(normalizePeerId(id!));
    } catch (error) {
      throw new UsageError(`${file}:${index + 1}: ${(error as Error).message}`);
    }
  });
  return ids;
}

/** Read and parse an allowed-peers file; an unreadable file is a UsageError. */
export async function readAllowFile(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(`--allow-file ${file}: ${code === 'ENOENT' ? 'no such file' : `cannot read it (${code ?? (error as Error).message})`}`);
  }
  return parseAllowFile(text, file);
}
