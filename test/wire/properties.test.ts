/**
 * Round-trip properties (STYLE §11): decode(encode(v)) equals v for every codec and for whole
 * messages, and encode(decode(b)) decodes to the same message.
 */

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  MessageClass,
  changeRequest,
  decodeMessage,
  encodeMessage,
  errorCode,
  ipFromBytes,
  mappedAddress,
  nonce,
  padding,
  passwordAlgorithm,
  passwordAlgorithms,
  realm,
  responsePort,
  software,
  unknownAttributes,
  username,
  verifyFingerprint,
  verifyIntegrity,
  xorMappedAddress,
  type TransportAddress,
} from '../../src/wire/index.js';

/** Records with Object.prototype, as the decoders return, so deepStrictEqual compares values. */
const plain = { noNullPrototype: true } as const;
const transactionId = fc.uint8Array({ minLength: 12, maxLength: 12 });
const port = fc.integer({ min: 0, max: 0xffff });
const transportAddress: fc.Arbitrary<TransportAddress> = fc.oneof(
  fc.record({ family: fc.constant(4 as const), address: fc.uint8Array({ minLength: 4, maxLength: 4 }).map(ipFromBytes), port }, plain),
  fc.record({ family: fc.constant(6 as const), address: fc.uint8Array({ minLength: 16, maxLength: 16 }).map(ipFromBytes), port }, plain),
);
/** Well-formed strings of up to `max` code points (no lone surrogates). */
const text = (max: number) => fc.string({ unit: 'grapheme', maxLength: max }).filter((s) => [...s].length <= max);
const attribute = fc.record({ type: fc.integer({ min: 0, max: 0xffff }), value: fc.uint8Array({ maxLength: 64 }) }, plain);
const fields = fc.record({
  method: fc.integer({ min: 0, max: 0xfff }),
  messageClass: fc.constantFrom(MessageClass.Request, MessageClass.Indication, MessageClass.SuccessResponse, MessageClass.ErrorResponse),
  transactionId,
  attributes: fc.array(attribute, { maxLength: 20 }),
}, plain);

describe('attribute codecs round-trip', () => {
  it('MAPPED-ADDRESS', () => {
    fc.assert(fc.property(transportAddress, (a) => assert.deepEqual(mappedAddress.decode(mappedAddress.encode(a)), a)));
  });

  it('XOR-MAPPED-ADDRESS under any transaction id', () => {
    fc.assert(
      fc.property(transportAddress, transactionId, (a, tid) => assert.deepEqual(xorMappedAddress.decode(xorMappedAddress.encode(a, tid), tid), a)),
    );
  });

  it('CHANGE-REQUEST, RESPONSE-PORT and PADDING', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.boolean(), port, fc.integer({ min: 0, max: 2000 }), (changeIp, changePort, p, n) => {
        assert.deepEqual(changeRequest.decode(changeRequest.encode({ changeIp, changePort })), { changeIp, changePort });
        assert.equal(responsePort.decode(responsePort.encode(p)), p);
        assert.equal(padding.decode(padding.encode(n)), n);
      }),
    );
  });

  it('ERROR-CODE', () => {
    fc.assert(
      fc.property(fc.integer({ min: 300, max: 699 }), text(127), (code, reason) => {
        assert.deepEqual(errorCode.decode(errorCode.encode({ code, reason })), { code, reason });
      }),
    );
  });

  it('UNKNOWN-ATTRIBUTES', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 50 }), (types) => {
        assert.deepEqual(unknownAttributes.decode(unknownAttributes.encode(types)), types);
      }),
    );
  });

  it('USERNAME, REALM, NONCE and SOFTWARE', () => {
    fc.assert(
      fc.property(text(127), (s) => {
        for (const codec of [username, realm, nonce, software]) assert.equal(codec.decode(codec.encode(s)), s);
      }),
    );
  });

  it('PASSWORD-ALGORITHM and PASSWORD-ALGORITHMS', () => {
    const entry = fc.record({ algorithm: fc.integer({ min: 0, max: 0xffff }), parameters: fc.uint8Array({ maxLength: 13 }) }, plain);
    fc.assert(
      fc.property(entry, fc.array(entry, { maxLength: 8 }), (one, many) => {
        assert.deepEqual(passwordAlgorithm.decode(passwordAlgorithm.encode(one)), one);
        assert.deepEqual(passwordAlgorithms.decode(passwordAlgorithms.encode(many)), many);
      }),
    );
  });
});

describe('messages round-trip', () => {
  it('decode(encode(fields)) gives the fields back, attributes in order, duplicates kept', () => {
    fc.assert(
      fc.property(fields, (m) => {
        const decoded = decodeMessage(encodeMessage(m));
        assert.equal(decoded.method, m.method);
        assert.equal(decoded.messageClass, m.messageClass);
        assert.deepEqual(decoded.transactionId, m.transactionId);
        assert.deepEqual(
          decoded.attributes.map((a) => ({ type: a.type, value: Uint8Array.from(a.value) })),
          m.attributes,
        );
      }),
    );
  });

  it('encode(decode(bytes)) reproduces bytes whose padding is zero', () => {
    fc.assert(
      fc.property(fields, (m) => {
        const bytes = encodeMessage(m);
        assert.deepEqual(encodeMessage(decodeMessage(bytes)), bytes);
      }),
    );
  });

  it('messages signed with any key and algorithm verify with that key only', () => {
    const algorithm = fc.constantFrom('sha1' as const, 'sha256' as const, 'both' as const);
    fc.assert(
      fc.property(fields, fc.uint8Array({ minLength: 1, maxLength: 40 }), algorithm, (m, key, alg) => {
        // Drop attributes the encoder appends itself.
        const attributes = m.attributes.filter((a) => a.type !== 0x0008 && a.type !== 0x001c && a.type !== 0x8028);
        const decoded = decodeMessage(encodeMessage({ ...m, attributes }, { integrity: { key, algorithm: alg }, fingerprint: true }));
        assert.equal(verifyIntegrity(decoded, key), alg === 'sha1' ? 'sha1' : 'sha256');
        // (Appending a zero byte would not do: HMAC pads short keys with zeros.)
        assert.equal(verifyIntegrity(decoded, key.map((b, i) => (i === 0 ? b ^ 1 : b))), false);
        assert.equal(verifyFingerprint(decoded), true);
      }),
      { numRuns: 200 },
    );
  });
});
