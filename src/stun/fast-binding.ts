import {
  type TransportAddress, AttrType, HEADER_LENGTH, MAGIC_COOKIE, computeFingerprint, ipToBytes, mappedAddress, readUint16,
  readUint32, software,
} from '../wire/index.js';
import type { BindingContext } from './binding.js';

/**
 * The Binding answer for the requests a public STUN server mostly gets, written straight from
 * the request's bytes: no decoded message, no attribute list, no second copy of the request.
 *
 * Handled: a well-formed Binding request (RFC 8489 §5, §6.3) whose attributes, if any, are only
 * SOFTWARE and a FINGERPRINT that verifies, i.e. those that leave the answer as plain as it gets (RFC 8489
 * §14.7: FINGERPRINT in the request asks for one in the response). Everything else (CHANGE-
 * REQUEST, RESPONSE-PORT, PADDING, USERNAME, unknown attributes, malformed bytes, odd addresses)
 * returns null so that the caller takes the general path (`decodeMessage` + `answerBinding`).
 *
 * Contract: for every request it answers, the bytes equal `answerBinding(decodeMessage(request),
 * ctx).bytes`, and that reply goes back to `ctx.remote` from the socket it arrived on (no
 * CHANGE-REQUEST, no RESPONSE-PORT). test/stun/fast-binding.test.ts checks this on random requests.
 * @see RFC 8489 §12, §14.2; RFC 5780 §7.3-7.4
 */
export function answerBindingFast(request: Uint8Array, ctx: BindingContext): Uint8Array | null {
  const length = request.length;
  // Header: Binding request type 0x0001, a body length that fills the datagram, the magic cookie.
  if (length < HEADER_LENGTH || request[0] !== 0x00 || request[1] !== 0x01) return null;
  if (readUint16(request, 2) !== length - HEADER_LENGTH || (length & 3) !== 0) return null;
  if (readUint32(request, 4) !== MAGIC_COOKIE) return null;

  let fingerprint = false;
  let offset = HEADER_LENGTH;
  for (let count = 0; offset < length; count++) {
    if (count === MAX_ATTRIBUTES || offset + 4 > length) return null;
    const type = readUint16(request, offset);
    const end = offset + 4 + ((readUint16(request, offset + 2) + 3) & ~3);
    if (end > length) return null;
    if (type === AttrType.Fingerprint) {
      // RFC 8489 §7.3, §14.7: FINGERPRINT comes last and must match, or this is not STUN; the
      // general path drops it and counts the drop.
      if (end !== length || readUint16(request, offset + 2) !== 4 || readUint32(request, offset + 4) !== computeFingerprint(request, offset)) return null;
      fingerprint = true;
    } else if (type !== AttrType.Software) return null;
    offset = end;
  }

  const remote = ctx.remote;
  const ip = remote.family === 4 ? parseIPv4(remote.address) : remote.family === 6 ? parseIPv6(remote.address) : null;
  if (ip === null || !Number.isInteger(remote.port) || remote.port < 0 || remote.port > 0xffff) return null;
  const other = ctx.other ? addressValue(ctx.other) : null;
  // RESPONSE-ORIGIN is where the answer leaves from: without CHANGE-REQUEST, where the request arrived.
  const origin = ctx.other ? addressValue(ctx.local) : null;
  if (ctx.other && (other === null || origin === null)) return null;

  // Optional attributes only within the request's own size on UDP, as answerBinding decides.
  let size = HEADER_LENGTH + 4 + 4 + ip.length + (other ? 8 + other.length + origin!.length : 0) + (fingerprint ? 8 : 0);
  let softwareValue: Uint8Array | null = null;
  if (ctx.software) {
    softwareValue = softwareBytes(ctx.software);
    if (softwareValue === null) return null;
    const budget = ctx.transport === 'tcp' ? Infinity : length;
    if (size + 4 + ((softwareValue.length + 3) & ~3) <= budget) size += 4 + ((softwareValue.length + 3) & ~3);
    else softwareValue = null;
  }

  // Every byte is written below (padding included), so the unzeroed pool allocation is safe.
  const out = Buffer.allocUnsafe(size);
  out[0] = 0x01; // Binding success response, RFC 8489 §5: type 0x0101
  out[1] = 0x01;
  out[2] = (size - HEADER_LENGTH) >>> 8;
  out[3] = (size - HEADER_LENGTH) & 0xff;
  for (let i = 4; i < HEADER_LENGTH; i++) out[i] = request[i]!; // magic cookie and transaction id

  // XOR-MAPPED-ADDRESS: port XOR the cookie's top half, address XOR the cookie (+ transaction id).
  let at = writeAttributeHeader(out, HEADER_LENGTH, AttrType.XorMappedAddress, 4 + ip.length);
  out[at] = 0;
  out[at + 1] = ip.length === 4 ? 0x01 : 0x02;
  out[at + 2] = (remote.port >>> 8) ^ (MAGIC_COOKIE >>> 24);
  out[at + 3] = (remote.port & 0xff) ^ ((MAGIC_COOKIE >>> 16) & 0xff);
  for (let i = 0; i < ip.length; i++) out[at + 4 + i] = ip[i]! ^ request[4 + i]!; // bytes 4..19: cookie, then id
  at += 4 + ip.length;
  if (other) {
    at = writeAttributeHeader(out, at, AttrType.OtherAddress, other.length);
    out.set(other, at);
    at = writeAttributeHeader(out, at + other.length, AttrType.ResponseOrigin, origin!.length);
    out.set(origin!, at);
    at += origin!.length;
  }
  if (softwareValue) {
    at = writeAttributeHeader(out, at, AttrType.Software, softwareValue.length);
    out.set(softwareValue, at);
    at += softwareValue.length;
    while ((at & 3) !== 0) out[at++] = 0;
  }
  if (fingerprint) {
    at = writeAttributeHeader(out, at, AttrType.Fingerprint, 4);
    const crc = computeFingerprint(out, at - 4);
    out[at] = crc >>> 24;
    out[at + 1] = (crc >>> 16) & 0xff;
    out[at + 2] = (crc >>> 8) & 0xff;
    out[at + 3] = crc & 0xff;
  }
  return out;
}

/** More attributes than this is not the common case; decodeMessage's own bound (64) is far above. */
const MAX_ATTRIBUTES = 8;

function writeAttributeHeader(out: Uint8Array, at: number, type: number, valueLength: number): number {
  out[at] = type >>> 8;
  out[at + 1] = type & 0xff;
  out[at + 2] = valueLength >>> 8;
  out[at + 3] = valueLength & 0xff;
  return at + 4;
}

/**
 * The 4 bytes of a dotted-quad IPv4 address in the form `net.isIPv4` accepts (decimal, no
 * leading zeros, each part 0-255), else null. By hand because it runs once per request.
 */
function parseIPv4(text: string): Uint8Array | null {
  const bytes = new Uint8Array(4);
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 0x2e; // a final '.' closes the last part
    if (c >= 0x30 && c <= 0x39) {
      if (digits === 1 && value === 0) return null; // leading zero
      value = value * 10 + (c - 0x30);
      if (++digits > 3 || value > 255) return null;
    } else if (c === 0x2e && digits > 0 && part < 4) {
      bytes[part++] = value;
      value = 0;
      digits = 0;
    } else {
      return null;
    }
  }
  return part === 4 ? bytes : null;
}

/** IPv6 goes through the wire codec's parser: rarer, and its text forms are many. */
function parseIPv6(text: string): Uint8Array | null {
  if (text.includes('%')) return null; // zone ids cannot be carried in STUN
  try {
    const bytes = ipToBytes(text);
    return bytes.length === 16 ? bytes : null;
  } catch {
    return null;
  }
}

/**
 * MAPPED-ADDRESS-shaped value bytes of a server address (OTHER-ADDRESS, RESPONSE-ORIGIN). The
 * server passes the same few address objects on every request, so the encoding is remembered
 * per object, and used only while the object still holds what was encoded.
 */
const addressValues = new WeakMap<TransportAddress, { family: number; address: string; port: number; value: Uint8Array | null }>();

function addressValue(a: TransportAddress): Uint8Array | null {
  const known = addressValues.get(a);
  if (known && known.family === a.family && known.address === a.address && known.port === a.port) return known.value;
  let value: Uint8Array | null;
  try {
    value = mappedAddress.encode(a);
  } catch {
    value = null; // not encodable: the general path reports it
  }
  addressValues.set(a, { family: a.family, address: a.address, port: a.port, value });
  return value;
}

/** The last SOFTWARE text encoded: a server advertises one. null when it cannot be encoded. */
let lastSoftware: { text: string; value: Uint8Array | null } | undefined;

function softwareBytes(text: string): Uint8Array | null {
  if (lastSoftware?.text === text) return lastSoftware.value;
  let value: Uint8Array | null;
  try {
    value = software.encode(text);
  } catch {
    value = null;
  }
  lastSoftware = { text, value };
  return value;
}
