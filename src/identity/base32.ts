/**
 * Base32 with the RFC 4648 alphabet, written lowercase without padding.
 *
 * Chosen for peer ids because it is case-insensitive (survives being read aloud, typed into a
 * shell, or used as a DNS label) and has no characters that need quoting in URLs or shells.
 * @see RFC 4648 §6
 */
import { UsageError } from '../errors.js';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

const VALUES: ReadonlyMap<string, number> = new Map(
  [...ALPHABET].flatMap((char, value) => [
    [char, value],
    [char.toUpperCase(), value],
  ]),
);

export function encodeBase32(bytes: Uint8Array): string {
  let text = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      text += ALPHABET[(buffer >>> bits) & 31];
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) text += ALPHABET[(buffer << (5 - bits)) & 31];
  return text;
}

/**
 * Decodes unpadded base32 in either case. Throws UsageError naming the first bad character,
 * or saying why the length cannot come from encodeBase32 (RFC 4648 §6 allows 0, 2, 4, 5 or 7
 * characters in the last group, and the unused trailing bits must be zero).
 */
export function decodeBase32(text: string): Uint8Array {
  const remainder = text.length % 8;
  if (remainder === 1 || remainder === 3 || remainder === 6) {
    throw new UsageError(
      `base32: length ${text.length} is impossible for encoded bytes (length mod 8 is ${remainder})`,
    );
  }
  const bytes = new Uint8Array(Math.floor((text.length * 5) / 8));
  let buffer = 0;
  let bits = 0;
  let index = 0;
  for (let i = 0; i < text.length; i++) {
    const value = VALUES.get(text[i] as string);
    if (value === undefined) {
      throw new UsageError(`base32: character ${JSON.stringify(text[i])} at position ${i} is not one of a-z, 2-7`);
    }
    buffer = (buffer << 5) | value;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes[index++] = (buffer >>> bits) & 0xff;
    }
    buffer &= (1 << bits) - 1;
  }
  if (buffer !== 0) {
    throw new UsageError('base32: the last character has non-zero unused bits (was the text cut short or mistyped?)');
  }
  return bytes;
}
