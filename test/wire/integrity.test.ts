/** MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256, FINGERPRINT and the credential keys. */

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  AttrType,
  MessageClass,
  attributeOffsets,
  Method,
  computeIntegrity,
  crc32,
  decodeMessage,
  encodeMessage,
  fingerprint,
  inspectFingerprint,
  inspectIntegrity,
  longTermKey,
  messageIntegrity,
  messageIntegritySha256,
  opaqueString,
  saslPrep,
  shortTermKey,
  software,
  userhash,
  verifyFingerprint,
  verifyIntegrity,
  type Attribute,
  type EncodeOptions,
  type StunMessage,
} from '../../src/wire/index.js';
import { assertDecodeError, assertEncodeError, assertUsageError, hex, toHex } from './helpers.js';

const TID = hex('0102030405060708090a0b0c');
const KEY = shortTermKey('secret');
const OTHER_KEY = shortTermKey('Secret');
const SOFTWARE: Attribute = { type: AttrType.Software, value: software.encode('natpunch test') };

function build(attributes: Attribute[], options?: EncodeOptions): StunMessage {
  return decodeMessage(encodeMessage({ method: Method.Binding, messageClass: MessageClass.Request, transactionId: TID, attributes }, options));
}

/** Recomputes the value of the attribute at `index` in place, as a sender would. */
function sign(msg: StunMessage, index: number, algorithm: 'sha1' | 'sha256', key: Uint8Array): StunMessage {
  const offset = attributeOffsets(msg.attributes)[index]!;
  const value = msg.attributes[index]!.value;
  value.set(computeIntegrity(msg.raw, offset, algorithm, key, value.length));
  return msg;
}

describe('encodeMessage integrity and fingerprint options', () => {
  const table: Array<[EncodeOptions['integrity'], boolean, number[], 'sha1' | 'sha256' | undefined]> = [
    [undefined, true, [AttrType.Fingerprint], undefined],
    [{ key: KEY }, false, [AttrType.MessageIntegrity], 'sha1'],
    [{ key: KEY, algorithm: 'sha1' }, true, [AttrType.MessageIntegrity, AttrType.Fingerprint], 'sha1'],
    [{ key: KEY, algorithm: 'sha256' }, false, [AttrType.MessageIntegritySha256], 'sha256'],
    [{ key: KEY, algorithm: 'sha256' }, true, [AttrType.MessageIntegritySha256, AttrType.Fingerprint], 'sha256'],
    [{ key: KEY, algorithm: 'both' }, true, [AttrType.MessageIntegrity, AttrType.MessageIntegritySha256, AttrType.Fingerprint], 'sha256'],
  ];
  for (const [integrity, withFingerprint, trailing, verdict] of table) {
    const label = `${integrity ? (integrity.algorithm ?? 'default') : 'no'} integrity, fingerprint ${withFingerprint}`;
    it(`appends ${trailing.length} trailing attribute(s) in RFC order for ${label}, and they verify`, () => {
      const options: EncodeOptions = { fingerprint: withFingerprint };
      if (integrity) options.integrity = integrity;
      const msg = build([SOFTWARE], options);
      assert.deepEqual(msg.attributes.slice(1).map((a) => a.type), trailing);
      assert.equal(verifyIntegrity(msg, KEY), verdict);
      assert.equal(verifyIntegrity(msg, OTHER_KEY), verdict === undefined ? undefined : false);
      assert.equal(verifyFingerprint(msg), withFingerprint ? true : undefined);
    });
  }

  it("with 'both', each HMAC covers the attributes before it and the length up to its own end", () => {
    const msg = build([SOFTWARE], { integrity: { key: KEY, algorithm: 'both' }, fingerprint: true });
    const sha1 = msg.attributes[1]!.value;
    const sha256 = msg.attributes[2]!.value;
    // MESSAGE-INTEGRITY at 20+20=40: the length field says 40+24-20 = 44.
    assert.deepEqual(sha1, computeIntegrity(msg.raw, 40, 'sha1', KEY));
    assert.deepEqual(sha256, computeIntegrity(msg.raw, 64, 'sha256', KEY));
    // Both still verify after the FINGERPRINT is removed: neither covers it.
    const trimmed = decodeMessage(encodeMessage({ ...msg, attributes: msg.attributes.slice(0, 3) }));
    assert.equal(verifyIntegrity(trimmed, KEY), 'sha256');
  });
});

describe('verifyIntegrity', () => {
  it('gives undefined for a message without integrity attributes', () => {
    const msg = build([SOFTWARE]);
    assert.equal(verifyIntegrity(msg, KEY), undefined);
    assert.match(inspectIntegrity(msg, KEY).detail, /no MESSAGE-INTEGRITY/);
  });

  it('accepts a MESSAGE-INTEGRITY-SHA256 truncated to 16 bytes', () => {
    const msg = sign(build([SOFTWARE, { type: AttrType.MessageIntegritySha256, value: new Uint8Array(16) }]), 1, 'sha256', KEY);
    assert.equal(verifyIntegrity(msg, KEY), 'sha256');
  });

  it('rejects integrity attributes of the wrong length with a reason', () => {
    const table: Array<[number, number, RegExp]> = [
      [AttrType.MessageIntegrity, 19, /MESSAGE-INTEGRITY at offset 40: value length 19, expected 20/],
      [AttrType.MessageIntegrity, 32, /value length 32, expected 20/],
      [AttrType.MessageIntegritySha256, 12, /MESSAGE-INTEGRITY-SHA256 at offset 40: value length 12, expected 16 to 32 in steps of 4/],
      [AttrType.MessageIntegritySha256, 18, /value length 18/],
      [AttrType.MessageIntegritySha256, 36, /value length 36/],
    ];
    for (const [type, length, detail] of table) {
      const msg = build([SOFTWARE, { type, value: new Uint8Array(length) }]);
      const check = inspectIntegrity(msg, KEY);
      assert.equal(check.verdict, false);
      assert.match(check.detail, detail);
    }
  });

  it('ignores attributes after MESSAGE-INTEGRITY, which the HMAC does not cover', () => {
    const signed = build([SOFTWARE], { integrity: { key: KEY } });
    const msg = decodeMessage(encodeMessage({ ...signed, attributes: [...signed.attributes, { type: AttrType.Username, value: new Uint8Array([0x78]) }] }));
    const check = inspectIntegrity(msg, KEY);
    assert.equal(check.verdict, 'sha1');
    assert.equal(check.coveredAttributes, 1);
  });

  it('prefers MESSAGE-INTEGRITY-SHA256 and ignores a MESSAGE-INTEGRITY placed after it', () => {
    const msg = sign(
      build([SOFTWARE, { type: AttrType.MessageIntegritySha256, value: new Uint8Array(32) }, { type: AttrType.MessageIntegrity, value: new Uint8Array(20) }]),
      1,
      'sha256',
      KEY,
    );
    assert.equal(verifyIntegrity(msg, KEY), 'sha256');
  });

  it('fails when MESSAGE-INTEGRITY-SHA256 is wrong even if MESSAGE-INTEGRITY is right', () => {
    const msg = sign(
      build([SOFTWARE, { type: AttrType.MessageIntegrity, value: new Uint8Array(20) }, { type: AttrType.MessageIntegritySha256, value: new Uint8Array(32) }]),
      1,
      'sha1',
      KEY,
    );
    const check = inspectIntegrity(msg, KEY);
    assert.equal(check.verdict, false);
    assert.match(check.detail, /MESSAGE-INTEGRITY-SHA256 at offset 64: HMAC does not match the key/);
  });

  it('says false, not a crash, when a hand-made message claims more attributes than its bytes hold', () => {
    const msg = build([SOFTWARE], { integrity: { key: KEY } });
    const lying: StunMessage = { ...msg, raw: msg.raw.subarray(0, 40) };
    assert.deepEqual(inspectIntegrity(lying, KEY).verdict, false);
    assert.match(inspectIntegrity(lying, KEY).detail, /lies outside raw/);
  });
});

describe('verifyFingerprint', () => {
  it('gives undefined when there is no FINGERPRINT', () => {
    assert.equal(verifyFingerprint(build([SOFTWARE])), undefined);
  });

  it('gives false when FINGERPRINT is not the last attribute', () => {
    const signed = build([SOFTWARE], { fingerprint: true });
    const msg = decodeMessage(encodeMessage({ ...signed, attributes: [...signed.attributes, SOFTWARE] }));
    assert.equal(verifyFingerprint(msg), false);
    assert.match(inspectFingerprint(msg).detail, /FINGERPRINT at offset 40 is not the last attribute/);
  });

  it('gives false for a value that is not 4 bytes', () => {
    const msg = build([SOFTWARE, { type: AttrType.Fingerprint, value: new Uint8Array(8) }]);
    assert.equal(verifyFingerprint(msg), false);
    assert.match(inspectFingerprint(msg).detail, /value length 8, expected 4/);
  });

  it('gives false, naming both values, when the CRC does not match', () => {
    const msg = build([SOFTWARE, { type: AttrType.Fingerprint, value: new Uint8Array(4) }]);
    assert.equal(verifyFingerprint(msg), false);
    assert.match(inspectFingerprint(msg).detail, /got 0x00000000, expected 0x[0-9a-f]{8}/);
  });

  it('gives false when a hand-made message claims more bytes than raw holds', () => {
    const msg = build([SOFTWARE], { fingerprint: true });
    assert.equal(verifyFingerprint({ ...msg, raw: msg.raw.subarray(0, 40) }), false);
  });
});

describe('crc32', () => {
  it('gives the CRC-32 check value 0xcbf43926 for "123456789"', () => {
    assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  });

  it('gives 0 for no bytes and continues across chunks', () => {
    assert.equal(crc32(new Uint8Array(0)), 0);
    const data = new TextEncoder().encode('Session Traversal Utilities for NAT');
    for (let k = 0; k <= data.length; k += 7) {
      assert.equal(crc32(data.subarray(k), crc32(data.subarray(0, k))), crc32(data));
    }
  });
});

describe('integrity and fingerprint attribute codecs', () => {
  it('round-trip their values', () => {
    assert.equal(fingerprint.decode(fingerprint.encode(0xdeadbeef)), 0xdeadbeef);
    assert.deepEqual(messageIntegrity.decode(messageIntegrity.encode(new Uint8Array(20).fill(7))), new Uint8Array(20).fill(7));
    assert.deepEqual(messageIntegritySha256.decode(messageIntegritySha256.encode(new Uint8Array(16))), new Uint8Array(16));
  });

  it('reject wrong lengths and values', () => {
    assertDecodeError(() => fingerprint.decode(new Uint8Array(3)), /attribute FINGERPRINT: value length 3, expected 4/);
    assertEncodeError(() => fingerprint.encode(2 ** 32), /FINGERPRINT: value 4294967296 is not a 32-bit unsigned integer/);
    assertEncodeError(() => fingerprint.encode(-1), /not a 32-bit/);
    assertDecodeError(() => messageIntegrity.decode(new Uint8Array(21)), /MESSAGE-INTEGRITY: value length 21, expected 20/);
    assertEncodeError(() => messageIntegrity.encode(new Uint8Array(19)), /value length 19, expected 20/);
    assertDecodeError(() => messageIntegritySha256.decode(new Uint8Array(20).subarray(0, 14)), /MESSAGE-INTEGRITY-SHA256: value length 14/);
    assertEncodeError(() => messageIntegritySha256.encode(new Uint8Array(40)), /value length 40/);
  });
});

describe('credential keys', () => {
  it('short-term key is the UTF-8 of the NFC-normalised password', () => {
    assert.equal(toHex(shortTermKey('VOkJxbRl1RmTxUk/WvJxBt')), toHex(new TextEncoder().encode('VOkJxbRl1RmTxUk/WvJxBt')));
    // e + combining acute composes to U+00E9 (NFC); a no-break space maps to a space.
    assert.equal(toHex(shortTermKey('e\u0301\u00a0x')), toHex(new TextEncoder().encode('\u00e9 x')));
  });

  it('long-term key is MD5 (or SHA-256) of username:realm:password', () => {
    const md5 = createHash('md5').update('user:realm:pass').digest('hex');
    const sha256 = createHash('sha256').update('user:realm:pass').digest('hex');
    assert.equal(toHex(longTermKey('user', 'realm', 'pass')), md5);
    assert.equal(toHex(longTermKey('user', 'realm', 'pass', 'md5')), md5);
    assert.equal(toHex(longTermKey('user', 'realm', 'pass', 'sha256')), sha256);
    assertUsageError(() => longTermKey('u', 'r', 'p', 'sha1' as 'md5'), /algorithm "sha1", expected "md5" or "sha256"/);
  });

  it('userhash is SHA-256 of username:realm', () => {
    assert.equal(toHex(userhash('user', 'realm')), createHash('sha256').update('user:realm').digest('hex'));
  });

  it('OpaqueString keeps compatibility characters that SASLprep folds', () => {
    assert.equal(opaqueString('\u2168'), '\u2168');
    assert.equal(saslPrep('\u2168'), 'IX');
    assert.equal(saslPrep('a\u00adb\u200bc\u3000d'), 'abc d');
  });
});
