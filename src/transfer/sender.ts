/**
 * The sending side: OFFER, then for each file the rest the receiver lacks — after checking that
 * what it holds is a prefix of this file (its SHA-256 against ours), else from byte 0 — then
 * DONE, and the receiver's SUMMARY once everything is written and verified.
 * @see docs/decisions/011-file-transfer.md
 */
import { createHash, timingSafeEqual, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import type { Duplex } from 'node:stream';
import { AbortedError } from '../errors.js';
import { Channel } from './channel.js';
import { TransferError } from './errors.js';
import type { LocalEntry } from './local-entries.js';
import { encodeDataHeader, encodeMessage, FRAME_HEADER_LENGTH, PROTOCOL_VERSION, type Resume } from './messages.js';
import { DEFAULT_MAX_ENTRIES, DEFAULT_MAX_OFFER_BYTES } from './message-reader.js';
import type { CheckListener } from './output-directory.js';
import { ProgressCounter, type ProgressListener, type TransferSummary } from './progress.js';

/** Bytes per DATA frame: large enough that framing costs nothing, small enough to keep progress smooth. */
export const CHUNK_BYTES = 64 * 1024;

/** Options of {@link sendFiles}; all optional. */
export interface SendOptions {
  /** Aborts the transfer (rejects with AbortedError). */
  signal?: AbortSignal;
  /** Told the progress after each step (default: nobody). */
  onProgress?: ProgressListener;
  /** Told before the sender hashes its copy of bytes the receiver already holds (a read of them). */
  onCheck?: CheckListener;
  /** Most bytes per second of file data (default: as fast as the connection goes), like curl's --limit-rate. */
  rateLimit?: number;
}

/** Send `entries` over `stream`. Resolves once the receiver confirmed every file; throws TransferError (or the stream's own error). */
export async function sendFiles(stream: Duplex, entries: readonly LocalEntry[], options: SendOptions = {}): Promise<TransferSummary> {
  const channel = new Channel(stream, 'sender', { signal: options.signal });
  const files = entries.filter((e) => e.kind === 'file');
  const progress = new ProgressCounter(files.reduce((sum, f) => sum + f.size, 0), options.onProgress);
  const pace = pacer(options.rateLimit, options.signal);
  try {
    await channel.write(encodeOffer(entries));
    const accept = await channel.read(['accept'], 'in answer to the offer');
    if (accept?.type !== 'accept') throw new TransferError('closed', 'the receiver closed the connection without answering the offer');
    if (accept.resume.length !== files.length) throw new TransferError('protocol', `the receiver answered for ${accept.resume.length} files, the offer has ${files.length}`);
    const resume = new Map(files.map((f, i) => [f, accept.resume[i]!]));
    const inPlace = await checkComplete(resume, options.onCheck);
    channel.watch();
    for (const [index, entry] of entries.entries()) {
      if (entry.kind !== 'file') continue;
      const digest = inPlace.get(entry);
      if (digest) {
        // Already there, the same bytes: confirmed by its hash, nothing moves.
        await channel.write({ type: 'file', index, offset: entry.size }, { type: 'file-end', sha256: digest });
        progress.startFile(entry.path, entry.size);
      } else {
        await sendFile(channel, index, entry, resume.get(entry)!, progress, pace, options.onCheck);
      }
      progress.fileDone();
    }
    await channel.write({ type: 'done' });
    const summary = await channel.read(['summary'], 'after DONE');
    if (summary?.type !== 'summary') throw new TransferError('closed', 'the receiver closed the connection before confirming the files');
    if (summary.files !== files.length) throw new TransferError('protocol', `the receiver confirmed ${summary.files} files of ${files.length}`);
    await channel.close('SUMMARY');
    progress.finish();
    return {
      files: files.length, directories: entries.length - files.length, bytes: progress.state.total,
      transferred: progress.state.transferred, resumed: progress.state.resumed, paths: entries.map((e) => e.path),
    };
  } catch (error) {
    throw await channel.fail(error);
  }
}

/**
 * Files the receiver already has under their names (a tree sent again after an interruption):
 * each must be this very file — its SHA-256 the receiver's — before a byte of anything moves,
 * since the receiver never overwrites. Returns their digests.
 */
async function checkComplete(resume: Map<LocalEntry, Resume>, onCheck: CheckListener | undefined): Promise<Map<LocalEntry, Buffer>> {
  const digests = new Map<LocalEntry, Buffer>();
  for (const [entry, r] of resume) {
    if (r.state !== 'complete') continue;
    if (r.offset !== entry.size) throw new TransferError('protocol', `the receiver has ${JSON.stringify(entry.path)} complete at ${r.offset} bytes; it has ${entry.size}`);
    const hash = createHash('sha256');
    const handle = await openSource(entry);
    onCheck?.(entry.path, entry.size);
    try {
      await new FileReader(handle, entry).hashInto(hash, entry.size);
    } finally {
      await handle.close();
    }
    const digest = hash.digest();
    if (!timingSafeEqual(digest, r.prefixHash)) {
      throw new TransferError('exists', `${JSON.stringify(entry.path)} already exists at the receiver with other content; natpunch never overwrites: move it away there, or receive into another --out DIR`);
    }
    digests.set(entry, digest);
  }
  return digests;
}

async function openSource(entry: LocalEntry): Promise<FileHandle> {
  try {
    return await open(entry.source, 'r');
  } catch (error) {
    throw new TransferError('read-failed', `could not read ${entry.source}: ${(error as Error).message}`, { cause: error });
  }
}

async function sendFile(channel: Channel, index: number, entry: LocalEntry, resume: Resume, progress: ProgressCounter, pace: Pace, onCheck: CheckListener | undefined): Promise<void> {
  if (resume.offset > entry.size) throw new TransferError('protocol', `the receiver holds ${resume.offset} bytes of ${JSON.stringify(entry.path)}, which has ${entry.size}`);
  const handle = await openSource(entry);
  try {
    const reader = new FileReader(handle, entry);
    let hash = createHash('sha256');
    let offset = resume.offset;
    if (offset > 0) {
      onCheck?.(entry.path, offset);
      await reader.hashInto(hash, offset);
      // The receiver's bytes are a prefix of this file only if they hash alike; else the file
      // changed since (or another file has that name): all of it goes again.
      if (!timingSafeEqual(hash.copy().digest(), resume.prefixHash)) {
        hash = createHash('sha256');
        offset = 0;
      }
    }
    await sendFrom(channel, index, reader, hash, offset, progress, pace);
  } finally {
    await handle.close();
  }
}

async function sendFrom(channel: Channel, index: number, reader: FileReader, hash: Hash, offset: number, progress: ProgressCounter, pace: Pace): Promise<void> {
  await channel.write({ type: 'file', index, offset });
  progress.startFile(reader.entry.path, offset);
  for (let position = offset; position < reader.entry.size;) {
    const chunk = await reader.read(position, Math.min(CHUNK_BYTES, reader.entry.size - position));
    await pace(chunk.length);
    hash.update(chunk);
    await channel.write(encodeDataHeader(chunk.length), chunk);
    position += chunk.length;
    progress.moved(chunk.length);
  }
  await channel.write({ type: 'file-end', sha256: hash.digest() });
}

/** OFFER for `entries`, within what a receiver takes by default (else a 'limit' failure here, before connecting matters). */
export function encodeOffer(entries: readonly LocalEntry[]): Uint8Array {
  if (entries.length > DEFAULT_MAX_ENTRIES) throw new TransferError('limit', `${entries.length} files and directories in one send; a receiver takes at most ${DEFAULT_MAX_ENTRIES}: send fewer at a time`);
  const offer = encodeMessage({ type: 'offer', version: PROTOCOL_VERSION, entries: entries.map(({ kind, path, mode, size }) => ({ kind, path, mode, size })) });
  if (offer.length - FRAME_HEADER_LENGTH > DEFAULT_MAX_OFFER_BYTES) throw new TransferError('limit', `the list of files is ${offer.length} bytes; a receiver takes at most ${DEFAULT_MAX_OFFER_BYTES}: send fewer at a time`);
  return offer;
}

/** Waits before each chunk so that data leaves at most at `rate` bytes per second on average. */
type Pace = (bytes: number) => Promise<void>;

function pacer(rate: number | undefined, signal: AbortSignal | undefined): Pace {
  if (rate === undefined) return async () => undefined;
  const started = performance.now();
  let sent = 0;
  return async (bytes) => {
    const due = started + (sent / rate) * 1000;
    sent += bytes;
    const wait = due - performance.now();
    if (wait > 0) await delay(wait, undefined, { signal }).catch(() => { throw new AbortedError('the sender was interrupted (Ctrl-C or SIGTERM); what arrived is kept: sending again resumes'); });
  };
}

/** Reads an offered file by position, failing with its name when it is unreadable or shrank. */
class FileReader {
  readonly #handle: FileHandle;
  readonly entry: LocalEntry;
  constructor(handle: FileHandle, entry: LocalEntry) {
    this.#handle = handle;
    this.entry = entry;
  }

  async read(position: number, length: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await this.#handle.read(buffer, got, length - got, position + got));
      } catch (error) {
        throw new TransferError('read-failed', `could not read ${this.entry.source}: ${(error as Error).message}`, { cause: error });
      }
      if (bytesRead === 0) throw new TransferError('read-failed', `${this.entry.source} shrank to ${position + got} bytes while being sent (offered: ${this.entry.size}); send it again once it stops changing`);
      got += bytesRead;
    }
    return buffer;
  }

  async hashInto(hash: Hash, length: number): Promise<void> {
    for (let position = 0; position < length;) {
      const chunk = await this.read(position, Math.min(1 << 20, length - position));
      hash.update(chunk);
      position += chunk.length;
    }
  }
}
