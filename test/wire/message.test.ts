/** Message framing: header, demultiplexing, decoding rejections, encoding and its options. */

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StunDecodeError } from '../../src/errors.js';
import {
  AttrType,
  HEADER_LENGTH,
  MessageClass,
  Method,
  decodeMessage,
  encodeMessage,
  getAttribute,
  isRfc3489BindingRequest,
  isStunMessage,
  messageType,
  newTransactionId,
  readMessageLength,
  software,
  splitMessageType,
  type Attribute,
} from '../../src/wire/index.js';
import { SAMPLE_IPV4_RESPONSE } from './fixtures/rfc5769.js';
import { assertDecodeError, assertEncodeError, hex, toHex } from './helpers.js';

const TID = hex('0102030405060708090a0b0c');

/** A header (type, length, cookie, TID) followed by `body`, with `length` defaulting to the truth. */
function frame(body: string, options: { type?: number; length?: number; cookie?: number } = {}): Uint8Array {
  const bodyBytes = hex(body);
  const out = new Uint8Array(HEADER_LENGTH + bodyBytes.length);
  const view = new DataView(out.buffer);
  view.setUint16(0, options.type ?? 0x0001);
  view.setUint16(2, options.length ?? bodyBytes.length);
  view.setUint32(4, options.cookie ?? 0x2112a442);
  out.set(TID, 8);
  out.set(bodyBytes, HEADER_LENGTH);
  return out;
}

function encode(attributes: Attribute[]): Uint8Array {
  return encodeMessage({ method: Method.Binding, messageClass: MessageClass.Request, transactionId: TID, attributes });
}

describe('message type', () => {
  const table: Array<[number, MessageClass, number]> = [
    [Method.Binding, MessageClass.Request, 0x0001],
    [Method.Binding, MessageClass.Indication, 0x0011],
    [Method.Binding, MessageClass.SuccessResponse, 0x0101],
    [Method.Binding, MessageClass.ErrorResponse, 0x0111],
    [Method.Allocate, MessageClass.Request, 0x0003],
    [Method.Allocate, MessageClass.ErrorResponse, 0x0113],
    [Method.Send, MessageClass.Indication, 0x0016],
    [Method.Data, MessageClass.Indication, 0x0017],
    [Method.ChannelBind, MessageClass.SuccessResponse, 0x0109],
    [0xfff, MessageClass.ErrorResponse, 0x3fff],
  ];
  for (const [method, messageClass, type] of table) {
    it(`packs method 0x${method.toString(16)} class ${messageClass} as 0x${type.toString(16).padStart(4, '0')} and back`, () => {
      assert.equal(messageType(method, messageClass), type);
      assert.deepEqual(splitMessageType(type), { method, messageClass });
    });
  }

  it('round-trips every method and class', () => {
    for (let method = 0; method <= 0xfff; method++) {
      for (const messageClass of [0, 1, 2, 3] as MessageClass[]) {
        const type = messageType(method, messageClass);
        assert.ok(type <= 0x3fff);
        assert.deepEqual(splitMessageType(type), { method, messageClass });
      }
    }
  });
});

describe('isStunMessage', () => {
  const valid = hex(SAMPLE_IPV4_RESPONSE);
  const table: Array<[string, unknown, boolean]> = [
    ['an RFC 5769 response', valid, true],
    ['a header without attributes', frame(''), true],
    ['19 bytes', valid.subarray(0, 19), false],
    ['a first byte above 3 (RTP, DTLS)', frame('', { type: 0x8001 }), false],
    ['a first byte of 0x40', frame('', { type: 0x4001 }), false],
    ['a wrong magic cookie', frame('', { cookie: 0x2112a443 }), false],
    ['a length that is not a multiple of 4', frame('000000', { length: 3 }), false],
    ['a length larger than the buffer', frame('', { length: 4 }), false],
    ['trailing bytes after the message', frame('00000000', { length: 0 }), false],
    ['undefined', undefined, false],
    ['a string', 'not bytes', false],
  ];
  for (const [what, input, expected] of table) {
    it(`says ${expected} for ${what}`, () => {
      assert.equal(isStunMessage(input as Uint8Array), expected);
    });
  }

  it('accepts a Node Buffer', () => {
    assert.equal(isStunMessage(Buffer.from(valid)), true);
  });
});

describe('readMessageLength', () => {
  it('gives the total size from the header, ignoring what follows', () => {
    const bytes = hex(SAMPLE_IPV4_RESPONSE);
    const stream = new Uint8Array(bytes.length + 7);
    stream.set(bytes);
    assert.equal(readMessageLength(stream), bytes.length);
    assert.equal(readMessageLength(bytes.subarray(0, 20)), bytes.length);
  });

  it('gives undefined before 20 bytes have arrived or for a non-STUN header', () => {
    assert.equal(readMessageLength(new Uint8Array(19)), undefined);
    assert.equal(readMessageLength(frame('', { cookie: 1 })), undefined);
    assert.equal(readMessageLength(frame('', { type: 0xc001 })), undefined);
    assert.equal(readMessageLength(frame('00', { length: 2 })), undefined);
  });
});

describe('decodeMessage', () => {
  it('decodes method, class, transaction id and attributes in wire order', () => {
    const msg = decodeMessage(frame('80220003616263000006000178000000', { type: 0x0111 }));
    assert.equal(msg.method, Method.Binding);
    assert.equal(msg.messageClass, MessageClass.ErrorResponse);
    assert.deepEqual(msg.transactionId, TID);
    assert.deepEqual(
      msg.attributes.map((a) => [a.type, toHex(a.value)]),
      [
        [AttrType.Software, '616263'],
        [AttrType.Username, '78'],
      ],
    );
  });

  it('keeps a private copy of the bytes, so reusing the input buffer changes nothing', () => {
    const input = frame('8022000461626364');
    const msg = decodeMessage(input);
    input.fill(0xff);
    assert.equal(software.decode(getAttribute(msg, AttrType.Software)!), 'abcd');
    assert.equal(msg.raw[0], 0x00);
  });

  it('returns plain Uint8Arrays even for Buffer input', () => {
    const msg = decodeMessage(Buffer.from(frame('8022000461626364')));
    assert.equal(Object.getPrototypeOf(msg.raw), Uint8Array.prototype);
    assert.equal(Object.getPrototypeOf(msg.transactionId), Uint8Array.prototype);
    assert.equal(Object.getPrototypeOf(msg.attributes[0]!.value), Uint8Array.prototype);
  });

  it('accepts methods above 0x0FF, whose first byte is above 3, while isStunMessage (RFC 7983) does not', () => {
    const bytes = encodeMessage({ method: 0x100, messageClass: MessageClass.Request, transactionId: TID, attributes: [] });
    assert.equal(bytes[0], 0x04);
    assert.equal(decodeMessage(bytes).method, 0x100);
    assert.equal(readMessageLength(bytes), 20);
    assert.equal(isStunMessage(bytes), false);
  });

  it('ignores the content of padding bytes', () => {
    const msg = decodeMessage(frame('80220001 61ffffff'));
    assert.equal(toHex(msg.attributes[0]!.value), '61');
  });

  it('accepts zero-length attributes and up to maxAttributes of them', () => {
    const body = '00250000'.repeat(64);
    assert.equal(decodeMessage(frame(body)).attributes.length, 64);
  });

  const rejections: Array<[string, Uint8Array, RegExp, number]> = [
    ['a 19-byte buffer', new Uint8Array(19), /message: 19 bytes, shorter than the 20-byte header/, 0],
    ['an empty buffer', new Uint8Array(0), /message: 0 bytes/, 0],
    ['a first byte with its top bits set', frame('', { type: 0xc001 }), /first two bits must be 0, got first byte 0xc0/, 0],
    ['a first byte of 0x40', frame('', { type: 0x4001 }), /first two bits must be 0, got first byte 0x40/, 0],
    ['a wrong magic cookie', frame('', { cookie: 0xdeadbeef }), /magic cookie 0xdeadbeef, expected 0x2112a442/, 4],
    ['a length field that is not a multiple of 4', frame('0000', { length: 2 }), /length field 2 is not a multiple of 4/, 2],
    ['a length field beyond the buffer', frame('', { length: 8 }), /length field 8, but 0 bytes follow the header/, 2],
    ['a length field short of the buffer', frame('00250000', { length: 0 }), /length field 0, but 4 bytes follow the header/, 2],
    ['an attribute value longer than the message', frame('80220064 61626364'), /attribute SOFTWARE at offset 20: value length 100 \(100 padded\), but 4 bytes left/, 20],
    ['an attribute whose padding runs past the end', frame('00060009 6162636465666768'), /attribute USERNAME at offset 20: value length 9 \(12 padded\), but 8 bytes left/, 20],
    ['a second attribute that overruns', frame('00250000 12340008 00000000'), /attribute 0x1234 at offset 24: value length 8/, 24],
    ['65 attributes', frame('00250000'.repeat(65)), /message: more than 64 attributes/, 276],
  ];
  for (const [what, input, message, offset] of rejections) {
    it(`rejects ${what} with a StunDecodeError at offset ${offset}`, () => {
      assertDecodeError(() => decodeMessage(input), message);
      try {
        decodeMessage(input);
      } catch (err) {
        assert.equal((err as StunDecodeError).offset, offset);
      }
    });
  }

  it('decodes a message without the magic cookie as RFC 3489 only when asked to, and says so', () => {
    const classic = frame('00030004 00000006', { cookie: 0xdeadbeef });
    assertDecodeError(() => decodeMessage(classic), /RFC 3489 messages are not supported/);
    const message = decodeMessage(classic, { rfc3489: true });
    assert.deepEqual(message.rfc3489, { cookie: 0xdeadbeef });
    assert.equal(message.attributes[0]!.type, AttrType.ChangeRequest);
    assert.equal(decodeMessage(frame(''), { rfc3489: true }).rfc3489, undefined, 'a cookie makes it an RFC 8489 message');
  });

  it('recognises RFC 3489 Binding requests, and nothing else, as such', () => {
    assert.equal(isRfc3489BindingRequest(frame('00030004 00000000', { cookie: 0x01020304 })), true);
    assert.equal(isRfc3489BindingRequest(frame('')), false, 'has the magic cookie');
    assert.equal(isRfc3489BindingRequest(frame('', { cookie: 1, type: 0x0101 })), false, 'a response');
    assert.equal(isRfc3489BindingRequest(frame('0000', { cookie: 1, length: 2 })), false, 'length not a multiple of 4');
    assert.equal(isRfc3489BindingRequest(new Uint8Array(19)), false);
    assert.equal(isRfc3489BindingRequest('x' as unknown as Uint8Array), false);
  });

  it('encodes a reply to an RFC 3489 client with its cookie field, and rejects a cookie that is not 32 bits', () => {
    const bytes = encodeMessage({ method: Method.Binding, messageClass: MessageClass.SuccessResponse, transactionId: TID, attributes: [], cookie: 0xdeadbeef });
    assert.equal(new DataView(bytes.buffer).getUint32(4), 0xdeadbeef);
    assertEncodeError(() => encodeMessage({ method: Method.Binding, messageClass: MessageClass.Request, transactionId: TID, attributes: [], cookie: 2 ** 32 }), /cookie 4294967296 is not a 32-bit number/);
  });

  it('honours a smaller maxAttributes', () => {
    assert.equal(decodeMessage(frame('00250000'.repeat(2)), { maxAttributes: 2 }).attributes.length, 2);
    assertDecodeError(() => decodeMessage(frame('00250000'.repeat(3)), { maxAttributes: 2 }), /more than 2 attributes/);
  });

  it('rejects input that is not a Uint8Array with a StunDecodeError', () => {
    assertDecodeError(() => decodeMessage('hello' as unknown as Uint8Array), /expected a Uint8Array/);
    assertDecodeError(() => decodeMessage(null as unknown as Uint8Array), /expected a Uint8Array/);
  });
});

describe('getAttribute', () => {
  it('returns the first of duplicated attributes and undefined for absent ones', () => {
    const msg = decodeMessage(encode([
      { type: AttrType.Software, value: software.encode('first') },
      { type: AttrType.Software, value: software.encode('second') },
    ]));
    assert.equal(software.decode(getAttribute(msg, AttrType.Software)!), 'first');
    assert.equal(getAttribute(msg, AttrType.Username), undefined);
  });
});

describe('newTransactionId', () => {
  it('returns 12 fresh random bytes as a plain Uint8Array', () => {
    const a = newTransactionId();
    const b = newTransactionId();
    assert.equal(a.length, 12);
    assert.equal(Object.getPrototypeOf(a), Uint8Array.prototype);
    assert.notDeepEqual(a, b);
  });
});

describe('encodeMessage', () => {
  it('writes the header, pads each attribute with zeros and sets the length', () => {
    const bytes = encode([
      { type: AttrType.Software, value: new Uint8Array([0x61]) },
      { type: AttrType.Username, value: new Uint8Array([0x62, 0x63, 0x64, 0x65, 0x66]) },
    ]);
    assert.equal(
      toHex(bytes),
      '0001' + '0014' + '2112a442' + toHex(TID) + '8022000161000000' + '000600056263646566000000',
    );
  });

  it('encodes a message without attributes as a bare header', () => {
    assert.equal(toHex(encode([])), '000100002112a442' + toHex(TID));
  });

  it('accepts a body of exactly 65535 bytes and nothing more', () => {
    // 65535 is not a multiple of 4, so the largest body is 65532: one attribute of 65528 bytes.
    const largest = encode([{ type: AttrType.Data, value: new Uint8Array(65528) }]);
    assert.equal(largest.length, 20 + 65532);
    assert.equal(decodeMessage(largest).attributes[0]!.value.length, 65528);
    assertEncodeError(() => encode([{ type: AttrType.Data, value: new Uint8Array(65529) }]), /body of 65536 bytes does not fit/);
  });

  const base = { method: Method.Binding, messageClass: MessageClass.Request, transactionId: TID, attributes: [] as Attribute[] };
  const rejections: Array<[string, () => unknown, RegExp]> = [
    ['a 13-bit method', () => encodeMessage({ ...base, method: 0x1000 }), /method 4096 is not a 12-bit number/],
    ['a negative method', () => encodeMessage({ ...base, method: -1 }), /method -1/],
    ['class 4', () => encodeMessage({ ...base, messageClass: 4 as MessageClass }), /class 4 is not 0-3/],
    ['an 11-byte transaction id', () => encodeMessage({ ...base, transactionId: new Uint8Array(11) }), /transaction id must be 12 bytes, got 11/],
    ['a 17-bit attribute type', () => encodeMessage({ ...base, attributes: [{ type: 0x10000, value: new Uint8Array(0) }] }), /attribute #0: type 65536/],
    ['a value that is not bytes', () => encodeMessage({ ...base, attributes: [{ type: 1, value: 'x' as unknown as Uint8Array }] }), /MAPPED-ADDRESS: value must be a Uint8Array/],
    ['a 65536-byte value', () => encodeMessage({ ...base, attributes: [{ type: 0x13, value: new Uint8Array(65536) }] }), /DATA: value length 65536, at most 65535/],
    ['an unknown integrity algorithm', () => encodeMessage(base, { integrity: { key: new Uint8Array(1), algorithm: 'md5' as 'sha1' } }), /integrity algorithm "md5"/],
    ['an integrity key that is not bytes', () => encodeMessage(base, { integrity: { key: 'k' as unknown as Uint8Array } }), /integrity key must be a Uint8Array/],
    [
      'MESSAGE-INTEGRITY both listed and requested',
      () => encodeMessage({ ...base, attributes: [{ type: AttrType.MessageIntegrity, value: new Uint8Array(20) }] }, { integrity: { key: new Uint8Array(1) } }),
      /MESSAGE-INTEGRITY: given in the list and requested in options/,
    ],
    [
      'FINGERPRINT both listed and requested',
      () => encodeMessage({ ...base, attributes: [{ type: AttrType.Fingerprint, value: new Uint8Array(4) }] }, { fingerprint: true }),
      /FINGERPRINT: given in the list and requested in options/,
    ],
    [
      'a body that outgrows 65535 bytes once MESSAGE-INTEGRITY is added',
      () => encodeMessage({ ...base, attributes: [{ type: 0x13, value: new Uint8Array(65520) }] }, { integrity: { key: new Uint8Array(1) } }),
      /body of 65548 bytes does not fit/,
    ],
  ];
  for (const [what, fn, message] of rejections) {
    it(`rejects ${what} with a StunEncodeError`, () => assertEncodeError(fn, message));
  }
});
