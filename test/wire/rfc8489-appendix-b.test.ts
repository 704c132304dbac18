/**
 * RFC 8489 Appendix B.1 (with erratum 6268): long-term authentication with USERHASH,
 * PASSWORD-ALGORITHM SHA-256 and MESSAGE-INTEGRITY-SHA256 (fixtures/rfc8489-appendix-b.ts).
 */

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  AttrType,
  MessageClass,
  Method,
  decodeMessage,
  encodeMessage,
  getAttribute,
  longTermKey,
  nonce,
  passwordAlgorithm,
  PasswordAlgorithmNumber,
  realm,
  userhash,
  verifyIntegrity,
} from '../../src/wire/index.js';
import { SAMPLE_SHA256_PARAMS, SAMPLE_SHA256_REQUEST } from './fixtures/rfc8489-appendix-b.js';
import { hex, toHex } from './helpers.js';

describe('RFC 8489 Appendix B.1 sample request with MESSAGE-INTEGRITY-SHA256 and USERHASH', () => {
  const bytes = hex(SAMPLE_SHA256_REQUEST);
  const msg = decodeMessage(bytes);
  const p = SAMPLE_SHA256_PARAMS;
  const key = longTermKey(p.username, p.realm, p.password, 'sha256');

  it('decodes as a Binding request with USERHASH, NONCE, REALM, PASSWORD-ALGORITHM, MESSAGE-INTEGRITY-SHA256', () => {
    assert.equal(msg.method, Method.Binding);
    assert.equal(msg.messageClass, MessageClass.Request);
    assert.deepEqual(
      msg.attributes.map((a) => a.type),
      [AttrType.Userhash, AttrType.Nonce, AttrType.Realm, AttrType.PasswordAlgorithm, AttrType.MessageIntegritySha256],
    );
    assert.equal(nonce.decode(getAttribute(msg, AttrType.Nonce)!), p.nonce);
    assert.equal(realm.decode(getAttribute(msg, AttrType.Realm)!), p.realm);
    assert.deepEqual(passwordAlgorithm.decode(getAttribute(msg, AttrType.PasswordAlgorithm)!), {
      algorithm: PasswordAlgorithmNumber.Sha256,
      parameters: new Uint8Array(0),
    });
  });

  it('carries USERHASH = SHA-256(username ":" realm)', () => {
    assert.equal(toHex(getAttribute(msg, AttrType.Userhash)!), toHex(userhash(p.username, p.realm)));
  });

  it('verifies MESSAGE-INTEGRITY-SHA256 with the SHA-256 long-term key', () => {
    assert.equal(verifyIntegrity(msg, key), 'sha256');
  });

  it('fails with the MD5 long-term key', () => {
    assert.equal(verifyIntegrity(msg, longTermKey(p.username, p.realm, p.password, 'md5')), false);
  });

  it('is re-encoded byte for byte', () => {
    const ours = encodeMessage(
      {
        method: Method.Binding,
        messageClass: MessageClass.Request,
        transactionId: hex(p.transactionId),
        attributes: [
          { type: AttrType.Userhash, value: userhash(p.username, p.realm) },
          { type: AttrType.Nonce, value: nonce.encode(p.nonce) },
          { type: AttrType.Realm, value: realm.encode(p.realm) },
          { type: AttrType.PasswordAlgorithm, value: passwordAlgorithm.encode({ algorithm: PasswordAlgorithmNumber.Sha256 }) },
        ],
      },
      { integrity: { key, algorithm: 'sha256' } },
    );
    assert.equal(toHex(ours), toHex(bytes));
  });
});
