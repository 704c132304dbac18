/**
 * The receiving side: check the OFFER as a whole before any byte of data (paths, limits, names
 * already taken, free space), answer with what it already holds of each file, then write each
 * file under its temporary name and link it into place once its SHA-256 matches the sender's.
 * @see docs/decisions/011-file-transfer.md
 */
import { statfs } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { Channel } from './channel.js';
import { TransferError } from './errors.js';
import { checkOffer, entryComponents, type OfferLimits } from './entry-path.js';
import { DEFAULT_MAX_ENTRIES, type MessageLimits } from './message-reader.js';
import { PROTOCOL_VERSION, type Entry, type Message } from './messages.js';
import { existsError, OutputDirectory, writeFailed, type CheckListener, type PreparedFile } from './output-directory.js';
import { ProgressCounter, type ProgressListener, type TransferSummary } from './progress.js';

/** Options of {@link receiveFiles}. Only `directory` is required. */
export interface ReceiveOptions extends OfferLimits {
  /** Where files land (must exist). */
  directory: string;
  /** Aborts the transfer (rejects with AbortedError; partial files stay for a resume). */
  signal?: AbortSignal;
  /** Told the progress after each step (default: nobody). */
  onProgress?: ProgressListener;
  /** Told before bytes from an earlier run are hashed for resume (a read of all of them). */
  onCheck?: CheckListener;
  /** Told the offer once it is accepted, before any data. */
  onOffer?: (entries: readonly Entry[]) => void;
  /** Largest OFFER message, bytes (default 16 MiB). */
  maxOfferBytes?: number;
  /**
   * Final paths other transfers are writing now; an offer naming one of them is refused
   * ('busy'). Share one set between concurrent receiveFiles() into the same directory.
   */
  inProgress?: Set<string>;
}

/** Receive one offer over `stream` into `options.directory`. Throws TransferError (or the stream's own error). */
export async function receiveFiles(stream: Duplex, options: ReceiveOptions): Promise<TransferSummary> {
  const limits: MessageLimits = { maxOfferBytes: options.maxOfferBytes, maxEntries: options.maxEntries };
  const channel = new Channel(stream, 'receiver', { signal: options.signal, limits });
  const claimed: string[] = [];
  try {
    const output = await OutputDirectory.open(options.directory);
    const offer = await channel.read(['offer'], 'first');
    if (offer?.type !== 'offer') throw new TransferError('closed', 'the sender closed the connection without offering anything');
    if (offer.version !== PROTOCOL_VERSION) {
      throw new TransferError('unsupported-version', `the sender speaks file-transfer version ${offer.version}, this receiver version ${PROTOCOL_VERSION}; upgrade the older side`);
    }
    checkOffer(offer.entries, { ...options, defaultMaxEntries: DEFAULT_MAX_ENTRIES });
    let prepared: Map<number, PreparedFile>;
    try {
      prepared = await prepare(output, offer.entries, options, claimed);
      await checkFreeSpace(output.root, offer.entries, prepared);
    } catch (error) {
      await output.removeCreated(); // refused as a whole: leave DIR as it was
      throw error;
    }
    options.onOffer?.(offer.entries);
    await channel.write({ type: 'accept', resume: [...prepared.values()].map((p) => ({
      state: p.complete ? 'complete' as const : 'partial' as const, offset: p.offset, prefixHash: p.hash?.copy().digest() ?? new Uint8Array(32),
    })) });
    const progress = new ProgressCounter(sum(offer.entries), options.onProgress);
    await receiveData(channel, output, offer.entries, prepared, progress);
    await output.syncDirectories();
    await channel.write({ type: 'summary', files: prepared.size, bytes: progress.state.transferred });
    await channel.close('SUMMARY');
    progress.finish();
    return {
      files: prepared.size, directories: offer.entries.length - prepared.size, bytes: progress.state.total,
      transferred: progress.state.transferred, resumed: progress.state.resumed, paths: offer.entries.map((e) => e.path),
    };
  } catch (error) {
    throw await channel.fail(error);
  } finally {
    for (const path of claimed) options.inProgress?.delete(path);
  }
}

/** Make the offer's directories and find what of each file is here; by entry index. */
async function prepare(output: OutputDirectory, entries: readonly Entry[], { inProgress, onCheck }: ReceiveOptions, claimed: string[]): Promise<Map<number, PreparedFile>> {
  const prepared = new Map<number, PreparedFile>();
  try {
    for (const [index, entry] of entries.entries()) {
      const components = entryComponents(entry.path);
      if (entry.kind === 'directory') {
        await output.ensureDirectory(components, entry.mode);
        continue;
      }
      const file = await output.prepareFile(entry.path, components, entry.size, onCheck);
      if (inProgress?.has(file.final)) throw new TransferError('busy', `${JSON.stringify(entry.path)} is being received from another peer right now; send again once that transfer ends`);
      inProgress?.add(file.final);
      claimed.push(file.final);
      prepared.set(index, file);
    }
  } catch (error) {
    if (error instanceof TransferError) throw error;
    throw writeFailed('the offer', output.root, error);
  }
  return prepared;
}

async function checkFreeSpace(root: string, entries: readonly Entry[], prepared: Map<number, PreparedFile>): Promise<void> {
  let needed = 0;
  for (const [index, file] of prepared) needed += entries[index]!.size - file.offset;
  const fs = await statfs(root);
  const free = fs.bavail * fs.bsize;
  if (needed > free) throw new TransferError('limit', `the offer needs ${needed} more bytes and ${root} has ${free} free; make room and send again`);
}

/** FILE, DATA…, FILE_END for each file in order, then DONE. */
async function receiveData(channel: Channel, output: OutputDirectory, entries: readonly Entry[], prepared: Map<number, PreparedFile>, progress: ProgressCounter): Promise<void> {
  const order = [...prepared.keys()];
  for (const index of order) {
    const start = await channel.read(['file'], 'where a FILE was due');
    if (start === null) throw new TransferError('closed', `the sender closed the connection before ${JSON.stringify(entries[index]!.path)}; what arrived is kept: send again to resume`);
    await receiveFile(channel, output, index, entries[index]!, prepared.get(index)!, start as Extract<Message, { type: 'file' }>, progress);
  }
  const done = await channel.read(['done'], 'after the last file');
  if (done === null) throw new TransferError('closed', 'the sender closed the connection before DONE');
}

async function receiveFile(channel: Channel, output: OutputDirectory, index: number, entry: Entry, file: PreparedFile, start: Extract<Message, { type: 'file' }>, progress: ProgressCounter): Promise<void> {
  if (start.index !== index) throw new TransferError('protocol', `the sender started entry ${start.index}, expected ${index} (files go in offer order)`);
  if (file.complete) return confirmComplete(channel, output, entry, file, start, progress);
  if (start.offset !== 0 && start.offset !== file.offset) throw new TransferError('protocol', `the sender resumed ${JSON.stringify(entry.path)} at ${start.offset}; this receiver holds ${file.offset} bytes`);
  // From 0: the sender found our bytes are not a prefix of its file; they go.
  const hash = start.offset === 0 || !file.hash ? createHash('sha256') : file.hash;
  const handle = await output.openPartial(file, start.offset);
  let position = start.offset;
  progress.startFile(entry.path, start.offset);
  let finished = false;
  try {
    for (;;) {
      const message = await channel.read(['data', 'file-end'], `inside ${JSON.stringify(entry.path)}`);
      if (message === null) throw new TransferError('closed', `the sender closed the connection after ${position} of ${entry.size} bytes of ${JSON.stringify(entry.path)}; what arrived is kept: send again to resume`);
      if (message.type === 'data') {
        if (position + message.bytes.length > entry.size) throw new TransferError('protocol', `the sender sent more than the ${entry.size} bytes it offered for ${JSON.stringify(entry.path)}`);
        await write(handle, message.bytes, position, entry.path, output.root);
        hash.update(message.bytes);
        position += message.bytes.length;
        progress.moved(message.bytes.length);
        continue;
      }
      if (message.type !== 'file-end') throw new TransferError('protocol', `unexpected ${message.type}`);
      if (position !== entry.size) throw new TransferError('protocol', `the sender ended ${JSON.stringify(entry.path)} after ${position} of its ${entry.size} bytes`);
      if (!timingSafeEqual(hash.digest(), message.sha256)) {
        await handle.close();
        finished = true;
        await output.discard(file);
        throw new TransferError('hash-mismatch', `${JSON.stringify(entry.path)} arrived with another SHA-256 than the sender read (did it change while being sent?); nothing was kept: send it again`);
      }
      finished = true;
      await output.finish(file, handle, entry.mode);
      progress.fileDone();
      return;
    }
  } finally {
    if (!finished) await handle.close().catch(() => undefined);
  }
}

/** A file already in place, which the sender found is the one it offers: FILE_END only, nothing written. */
async function confirmComplete(channel: Channel, output: OutputDirectory, entry: Entry, file: PreparedFile, start: Extract<Message, { type: 'file' }>, progress: ProgressCounter): Promise<void> {
  if (start.offset !== entry.size) throw new TransferError('protocol', `the sender started ${JSON.stringify(entry.path)} at ${start.offset}, but it is complete here`);
  progress.startFile(entry.path, entry.size);
  const end = await channel.read(['file-end'], `for ${JSON.stringify(entry.path)}, which is complete here`);
  if (end === null) throw new TransferError('closed', `the sender closed the connection at ${JSON.stringify(entry.path)}`);
  if (end.type !== 'file-end' || !file.hash || !timingSafeEqual(file.hash.digest(), end.sha256)) throw existsError(entry.path, output.root);
  progress.fileDone();
}

async function write(handle: FileHandle, bytes: Uint8Array, position: number, path: string, root: string): Promise<void> {
  try {
    for (let written = 0; written < bytes.length;) {
      const { bytesWritten } = await handle.write(bytes, written, bytes.length - written, position + written);
      written += bytesWritten;
    }
  } catch (error) {
    throw writeFailed(path, root, error);
  }
}

function sum(entries: readonly Entry[]): number {
  return entries.reduce((total, e) => total + (e.kind === 'file' ? e.size : 0), 0);
}
