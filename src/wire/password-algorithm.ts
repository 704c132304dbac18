/**
 * PASSWORD-ALGORITHM (in requests: the algorithm the key was derived with) and
 * PASSWORD-ALGORITHMS (the list a server offers). Each entry is a 16-bit algorithm number, a
 * 16-bit parameters length, then the parameters padded to 4 bytes. MD5 (1) and SHA-256 (2)
 * take no parameters.
 * @see RFC 8489 §14.11, §14.12, §18.5
 */

import { padded, readUint16, writeUint16 } from './header.js';
import { StunDecodeError, StunEncodeError } from '../errors.js';

export interface PasswordAlgorithmEntry {
  algorithm: number;
  parameters?: Uint8Array;
}

export interface DecodedPasswordAlgorithm {
  algorithm: number;
  parameters: Uint8Array;
}

function entrySize(name: string, entry: PasswordAlgorithmEntry): number {
  if (entry === null || typeof entry !== 'object' || !Number.isInteger(entry.algorithm) || entry.algorithm < 0 || entry.algorithm > 0xffff) {
    throw new StunEncodeError(`attribute ${name}: algorithm ${entry?.algorithm} is not a 16-bit number`);
  }
  const parameters = entry.parameters ?? new Uint8Array(0);
  if (!(parameters instanceof Uint8Array) || parameters.length > 0xffff - 4) {
    throw new StunEncodeError(`attribute ${name}: parameters must be a Uint8Array of at most 65531 bytes`);
  }
  return 4 + padded(parameters.length);
}

function writeEntry(out: Uint8Array, offset: number, entry: PasswordAlgorithmEntry): number {
  const parameters = entry.parameters ?? new Uint8Array(0);
  writeUint16(out, offset, entry.algorithm);
  writeUint16(out, offset + 2, parameters.length);
  out.set(parameters, offset + 4);
  return offset + 4 + padded(parameters.length);
}

/** Reads one entry at `offset`; the last entry's padding may be left to the attribute's own. */
function readEntry(name: string, value: Uint8Array, offset: number): { entry: DecodedPasswordAlgorithm; next: number } {
  if (offset + 4 > value.length) {
    throw new StunDecodeError(`attribute ${name}: entry at offset ${offset} needs 4 bytes, ${value.length - offset} left`, offset);
  }
  const length = readUint16(value, offset + 2);
  if (offset + 4 + length > value.length) {
    throw new StunDecodeError(`attribute ${name}: parameters length ${length} at offset ${offset}, but ${value.length - offset - 4} bytes left`, offset);
  }
  const entry = { algorithm: readUint16(value, offset), parameters: value.slice(offset + 4, offset + 4 + length) };
  return { entry, next: Math.min(offset + 4 + padded(length), value.length) };
}

export const passwordAlgorithm = {
  encode(entry: PasswordAlgorithmEntry): Uint8Array {
    const out = new Uint8Array(entrySize('PASSWORD-ALGORITHM', entry));
    writeEntry(out, 0, entry);
    return out;
  },
  decode(value: Uint8Array): DecodedPasswordAlgorithm {
    const { entry, next } = readEntry('PASSWORD-ALGORITHM', value, 0);
    if (next !== value.length) {
      throw new StunDecodeError(`attribute PASSWORD-ALGORITHM: value length ${value.length}, expected ${next} for one algorithm`);
    }
    return entry;
  },
};

export const passwordAlgorithms = {
  encode(entries: PasswordAlgorithmEntry[]): Uint8Array {
    if (!Array.isArray(entries)) throw new StunEncodeError('attribute PASSWORD-ALGORITHMS: expected an array');
    const size = entries.reduce((sum, e) => sum + entrySize('PASSWORD-ALGORITHMS', e), 0);
    if (size > 0xffff) throw new StunEncodeError(`attribute PASSWORD-ALGORITHMS: ${size} bytes, at most 65535`);
    const out = new Uint8Array(size);
    let offset = 0;
    for (const e of entries) offset = writeEntry(out, offset, e);
    return out;
  },
  decode(value: Uint8Array): DecodedPasswordAlgorithm[] {
    const entries: DecodedPasswordAlgorithm[] = [];
    for (let offset = 0; offset < value.length; ) {
      const { entry, next } = readEntry('PASSWORD-ALGORITHMS', value, offset);
      entries.push(entry);
      offset = next;
    }
    return entries;
  },
};
