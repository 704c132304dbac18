import { inflateSync } from 'node:zlib';
// PNG's CRC is the same CRC-32 (ISO 3309) as STUN's FINGERPRINT.
import { crc32 } from '../../src/wire/fingerprint.js';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Bytes per pixel by colour type, at bit depth 8. @see PNG (ISO/IEC 15948) §11.2.2 */
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };

/**
 * Decodes a PNG as far as a test needs to trust it (ISO/IEC 15948): the signature, every
 * chunk's CRC, IHDR, and the IDAT stream inflated to exactly height scanlines of the stated
 * width, each with a valid filter byte. Throws saying what is wrong.
 */
export function decodePng(bytes: Buffer): { width: number; height: number } {
  if (!bytes.subarray(0, 8).equals(SIGNATURE)) throw new Error('png: no PNG signature');
  let offset = 8;
  let header: { width: number; height: number; depth: number; colour: number; interlace: number } | undefined;
  const data: Buffer[] = [];
  let ended = false;
  while (offset < bytes.length) {
    const length = bytes.readUInt32BE(offset);
    const type = bytes.subarray(offset + 4, offset + 8).toString('latin1');
    const body = bytes.subarray(offset + 8, offset + 8 + length);
    const crc = bytes.readUInt32BE(offset + 8 + length);
    if (crc32(bytes.subarray(offset + 4, offset + 8 + length)) !== crc) throw new Error(`png: chunk ${type} at ${offset}: CRC mismatch`);
    if (type === 'IHDR') header = { width: body.readUInt32BE(0), height: body.readUInt32BE(4), depth: body[8]!, colour: body[9]!, interlace: body[12]! };
    else if (type === 'IDAT') data.push(body);
    else if (type === 'IEND') ended = true;
    offset += 12 + length;
  }
  if (!header) throw new Error('png: no IHDR');
  if (!ended) throw new Error('png: no IEND (truncated)');
  const channels = CHANNELS[header.colour];
  if (header.depth !== 8 || channels === undefined || header.interlace !== 0) throw new Error(`png: depth ${header.depth}, colour type ${header.colour}, interlace ${header.interlace}: not what a screenshot is`);
  const raw = inflateSync(Buffer.concat(data));
  const stride = 1 + header.width * channels;
  if (raw.length !== header.height * stride) throw new Error(`png: ${raw.length} bytes of pixels, expected ${header.height} rows of ${stride}`);
  for (let row = 0; row < header.height; row++) {
    if (raw[row * stride]! > 4) throw new Error(`png: row ${row} has filter type ${raw[row * stride]}`);
  }
  return { width: header.width, height: header.height };
}
