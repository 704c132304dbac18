/**
 * The file-transfer protocol's messages: pure encode/decode, no I/O (STYLE §1). Every message is
 * a frame — type (u8), body length (u32, network byte order), body — on the connection's one
 * reliable, ordered, authenticated byte stream. The conversation and its rules are in
 * docs/decisions/011-file-transfer.md; which side may send what, when, is the sender's and
 * receiver's business, not the codec's.
 */
import { TransferDecodeError } from './errors.js';

/** The protocol version this code speaks, carried in OFFER. */
export const PROTOCOL_VERSION = 1;
/** OFFER starts with these bytes, so a receiver can tell a stranger's bytes (a `connect` pipe) at once. */
export const OFFER_MAGIC = new Uint8Array([0x4e, 0x50, 0x46, 0x54]); // "NPFT"
export const FRAME_HEADER_LENGTH = 5;
export const SHA256_LENGTH = 32;
/** Longest entry path, bytes of UTF-8 (Linux's PATH_MAX). */
export const MAX_PATH_BYTES = 4096;
/** One file's part of ACCEPT: state, offset, SHA-256. */
export const ACCEPT_ENTRY_LENGTH = 1 + 8 + SHA256_LENGTH;
/** Longest ERROR message text, bytes of UTF-8. */
export const MAX_ERROR_TEXT_BYTES = 1024;

export const MessageType = {
  Offer: 1, // sender → receiver: what it would send
  Accept: 2, // receiver → sender: per file, the prefix it already has (or that it has all of it)
  File: 3, // sender → receiver: the next file's index and the offset its data starts at
  Data: 4, // sender → receiver: bytes of the current file
  FileEnd: 5, // sender → receiver: the current file's SHA-256, over all of it
  Done: 6, // sender → receiver: no more files
  Summary: 7, // receiver → sender: every file written and verified
  Error: 8, // either way: the transfer failed; the sender of ERROR ends its side
} as const;
export type MessageTypeValue = (typeof MessageType)[keyof typeof MessageType];

const typeNames: Record<number, string> = { 1: 'OFFER', 2: 'ACCEPT', 3: 'FILE', 4: 'DATA', 5: 'FILE_END', 6: 'DONE', 7: 'SUMMARY', 8: 'ERROR' };
export function messageTypeName(type: number): string {
  return typeNames[type] ?? `unknown type ${type}`;
}

/** What an offered entry is. */
export type EntryKind = 'file' | 'directory';
/** One entry of an offer: a path relative to the receiver's output directory ('/' separated). */
export interface Entry {
  /** A file or a directory. */
  kind: EntryKind;
  /** Its path relative to the output directory, '/' separated. */
  path: string;
  /** Permission bits (≤ 0o7777; the receiver applies at most 0o777). */
  mode: number;
  /** Bytes; 0 for a directory. */
  size: number;
}

/**
 * Per file entry of the offer, in order: how much of it the receiver already holds. `partial`:
 * `offset` bytes of a temporary file from an earlier run; `complete`: a file of that name and
 * size is already in place (`offset` is its size) — the same file if the hashes agree, else the
 * offer is refused (the receiver never overwrites).
 */
export interface Resume {
  state: 'partial' | 'complete';
  offset: number;
  /** SHA-256 of those `offset` bytes (all zero when offset is 0). */
  prefixHash: Uint8Array;
}

export type Message =
  | { type: 'offer'; version: number; entries: Entry[] }
  | { type: 'accept'; resume: Resume[] }
  | { type: 'file'; index: number; offset: number }
  | { type: 'data'; bytes: Uint8Array }
  | { type: 'file-end'; sha256: Uint8Array }
  | { type: 'done' }
  | { type: 'summary'; files: number; bytes: number }
  | { type: 'error'; reason: string; message: string };

const kindCodes: Record<EntryKind, number> = { file: 1, directory: 2 };
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A frame: header and body. */
function frame(type: MessageTypeValue, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_LENGTH + body.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, body.length);
  out.set(body, FRAME_HEADER_LENGTH);
  return out;
}

/** DATA's header alone, so a chunk read from disk is written without a copy. */
export function encodeDataHeader(length: number): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_LENGTH);
  out[0] = MessageType.Data;
  new DataView(out.buffer).setUint32(1, length);
  return out;
}

/** Builds a body from fixed-size fields. */
class BodyWriter {
  readonly #parts: Uint8Array[] = [];
  #length = 0;
  bytes(b: Uint8Array): this { this.#parts.push(b); this.#length += b.length; return this; }
  u8(v: number): this { return this.bytes(Uint8Array.of(v)); }
  u16(v: number): this { const b = new Uint8Array(2); new DataView(b.buffer).setUint16(0, v); return this.bytes(b); }
  u32(v: number): this { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v); return this.bytes(b); }
  u64(v: number): this { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(v)); return this.bytes(b); }
  finish(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let at = 0;
    for (const part of this.#parts) { out.set(part, at); at += part.length; }
    return out;
  }
}

export function encodeMessage(message: Message): Uint8Array {
  const w = new BodyWriter();
  switch (message.type) {
    case 'offer':
      w.bytes(OFFER_MAGIC).u8(message.version).u32(message.entries.length);
      for (const entry of message.entries) {
        const path = utf8.encode(entry.path);
        w.u8(kindCodes[entry.kind]).u16(entry.mode).u64(entry.size).u16(path.length).bytes(path);
      }
      return frame(MessageType.Offer, w.finish());
    case 'accept':
      w.u32(message.resume.length);
      for (const r of message.resume) w.u8(r.state === 'complete' ? 1 : 0).u64(r.offset).bytes(r.prefixHash);
      return frame(MessageType.Accept, w.finish());
    case 'file':
      return frame(MessageType.File, w.u32(message.index).u64(message.offset).finish());
    case 'data':
      return frame(MessageType.Data, message.bytes);
    case 'file-end':
      return frame(MessageType.FileEnd, message.sha256);
    case 'done':
      return frame(MessageType.Done, new Uint8Array(0));
    case 'summary':
      return frame(MessageType.Summary, w.u32(message.files).u64(message.bytes).finish());
    case 'error': {
      const reason = utf8.encode(message.reason).subarray(0, 255);
      const text = truncateUtf8(message.message, MAX_ERROR_TEXT_BYTES);
      return frame(MessageType.Error, w.u8(reason.length).bytes(reason).u16(text.length).bytes(text).finish());
    }
  }
}

/** UTF-8 of `text`, cut at a character boundary to at most `max` bytes. */
function truncateUtf8(text: string, max: number): Uint8Array {
  const bytes = utf8.encode(text);
  if (bytes.length <= max) return bytes;
  let end = max;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // not inside a multi-byte sequence
  return bytes.subarray(0, end);
}

/** Reads fixed-size fields off a body, failing with where and what. */
class BodyReader {
  readonly #view: DataView;
  readonly #bytes: Uint8Array;
  readonly #what: string;
  at = 0;
  constructor(bytes: Uint8Array, what: string) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#what = what;
  }
  #need(n: number, field: string): void {
    if (this.at + n > this.#bytes.length) {
      throw new TransferDecodeError(`${this.#what}: body ends at ${this.#bytes.length} bytes, ${field} needs ${n} more at offset ${this.at}`, this.at);
    }
  }
  u8(field: string): number { this.#need(1, field); return this.#view.getUint8(this.at++); }
  u16(field: string): number { this.#need(2, field); const v = this.#view.getUint16(this.at); this.at += 2; return v; }
  u32(field: string): number { this.#need(4, field); const v = this.#view.getUint32(this.at); this.at += 4; return v; }
  u64(field: string): number {
    this.#need(8, field);
    const v = this.#view.getBigUint64(this.at);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new TransferDecodeError(`${this.#what}: ${field} ${v} is beyond 2^53 - 1`, this.at);
    this.at += 8;
    return Number(v);
  }
  bytes(n: number, field: string): Uint8Array { this.#need(n, field); const b = this.#bytes.slice(this.at, this.at + n); this.at += n; return b; }
  text(n: number, field: string): string {
    const at = this.at;
    const b = this.bytes(n, field);
    try {
      return strictUtf8.decode(b);
    } catch {
      throw new TransferDecodeError(`${this.#what}: ${field} is not valid UTF-8`, at);
    }
  }
  end(): void {
    if (this.at !== this.#bytes.length) throw new TransferDecodeError(`${this.#what}: ${this.#bytes.length - this.at} bytes after the last field`, this.at);
  }
}

/**
 * Decode one message's body. Structure only (lengths, ranges, UTF-8); whether a path is safe is
 * entry-path.ts's question, asked by the receiver. Throws TransferDecodeError.
 */
export function decodeMessage(type: number, body: Uint8Array): Message {
  const name = messageTypeName(type);
  const r = new BodyReader(body, name);
  switch (type) {
    case MessageType.Offer: {
      const magic = r.bytes(4, 'magic');
      if (!magic.every((b, i) => b === OFFER_MAGIC[i])) throw new TransferDecodeError('OFFER: wrong magic: the peer is not sending files with natpunch send', 0);
      const version = r.u8('version');
      // Another version's entries may have another shape: the receiver answers unsupported-version.
      if (version !== PROTOCOL_VERSION) return { type: 'offer', version, entries: [] };
      const count = r.u32('entry count');
      // Each entry takes at least 13 bytes: a count that cannot fit is refused before any allocation.
      if (count > (body.length - r.at) / 13) throw new TransferDecodeError(`OFFER: ${count} entries cannot fit in ${body.length} bytes`, 5);
      const entries: Entry[] = [];
      for (let i = 0; i < count; i++) entries.push(decodeEntry(r, i));
      r.end();
      return { type: 'offer', version, entries };
    }
    case MessageType.Accept: {
      const count = r.u32('count');
      if (count > (body.length - 4) / ACCEPT_ENTRY_LENGTH) throw new TransferDecodeError(`ACCEPT: ${count} files cannot fit in ${body.length} bytes`, 0);
      const resume: Resume[] = [];
      for (let i = 0; i < count; i++) {
        const code = r.u8(`file ${i} state`);
        if (code > 1) throw new TransferDecodeError(`ACCEPT: file ${i} has state ${code}, expected 0 (partial) or 1 (complete)`, r.at - 1);
        resume.push({ state: code === 1 ? 'complete' : 'partial', offset: r.u64(`file ${i} offset`), prefixHash: r.bytes(SHA256_LENGTH, `file ${i} prefix hash`) });
      }
      r.end();
      return { type: 'accept', resume };
    }
    case MessageType.File: {
      const message = { type: 'file' as const, index: r.u32('index'), offset: r.u64('offset') };
      r.end();
      return message;
    }
    case MessageType.Data:
      return { type: 'data', bytes: body };
    case MessageType.FileEnd: {
      const sha256 = r.bytes(SHA256_LENGTH, 'SHA-256');
      r.end();
      return { type: 'file-end', sha256 };
    }
    case MessageType.Done:
      r.end();
      return { type: 'done' };
    case MessageType.Summary: {
      const message = { type: 'summary' as const, files: r.u32('files'), bytes: r.u64('bytes') };
      r.end();
      return message;
    }
    case MessageType.Error: {
      const reason = r.text(r.u8('reason length'), 'reason');
      const message = r.text(r.u16('message length'), 'message');
      if (utf8.encode(message).length > MAX_ERROR_TEXT_BYTES) throw new TransferDecodeError(`ERROR: message longer than ${MAX_ERROR_TEXT_BYTES} bytes`, 0);
      r.end();
      return { type: 'error', reason, message };
    }
    default:
      throw new TransferDecodeError(`frame of unknown type ${type}`, 0);
  }
}

function decodeEntry(r: BodyReader, i: number): Entry {
  const code = r.u8(`entry ${i} kind`);
  const kind: EntryKind | undefined = code === 1 ? 'file' : code === 2 ? 'directory' : undefined;
  if (!kind) throw new TransferDecodeError(`OFFER: entry ${i} has kind ${code}, expected 1 (file) or 2 (directory)`, r.at - 1);
  const mode = r.u16(`entry ${i} mode`);
  if (mode > 0o7777) throw new TransferDecodeError(`OFFER: entry ${i} mode 0o${mode.toString(8)} is beyond 0o7777`, r.at - 2);
  const size = r.u64(`entry ${i} size`);
  if (kind === 'directory' && size !== 0) throw new TransferDecodeError(`OFFER: entry ${i} is a directory of size ${size}, expected 0`, r.at - 8);
  const length = r.u16(`entry ${i} path length`);
  if (length === 0 || length > MAX_PATH_BYTES) throw new TransferDecodeError(`OFFER: entry ${i} path length ${length}, expected 1 to ${MAX_PATH_BYTES}`, r.at - 2);
  return { kind, path: r.text(length, `entry ${i} path`), mode, size };
}
