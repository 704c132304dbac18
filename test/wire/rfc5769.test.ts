/**
 * RFC 5769 test vectors (fixtures/rfc5769.ts): every sample decodes, its MESSAGE-INTEGRITY and
 * FINGERPRINT verify with the RFC's credentials, its XOR-MAPPED-ADDRESS gives the RFC's
 * address, and our encoder produces the same bytes (up to the RFC's 0x20 padding).
 */

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  AttrType,
  MessageClass,
  attributeOffsets,
  padded,
  Method,
  decodeMessage,
  encodeMessage,
  getAttribute,
  inspectIntegrity,
  longTermKey,
  nonce,
  realm,
  reflexiveAddress,
  saslPrep,
  shortTermKey,
  software,
  username,
  verifyFingerprint,
  verifyIntegrity,
  xorMappedAddress,
  type StunMessage,
} from '../../src/wire/index.js';
import {
  SAMPLE_IPV4_RESPONSE,
  SAMPLE_IPV6_RESPONSE,
  SAMPLE_LONG_TERM_PARAMS,
  SAMPLE_LONG_TERM_REQUEST,
  SAMPLE_REQUEST,
  SAMPLE_REQUEST_PARAMS,
  SAMPLE_RESPONSE_PARAMS,
} from './fixtures/rfc5769.js';
import { hex, toHex } from './helpers.js';

const shortKey = shortTermKey(SAMPLE_REQUEST_PARAMS.password);

/** Flips one bit of `bytes` at `offset` and decodes the copy. */
function tampered(bytes: Uint8Array, offset: number): StunMessage {
  const copy = Uint8Array.from(bytes);
  copy[offset]! ^= 0x01;
  return decodeMessage(copy);
}

/** Re-encodes a decoded vector from its attributes up to MESSAGE-INTEGRITY. */
function reencode(msg: StunMessage, key: Uint8Array, fingerprint: boolean): Uint8Array {
  const attributes = msg.attributes.filter((a) => a.type !== AttrType.MessageIntegrity && a.type !== AttrType.Fingerprint);
  return encodeMessage(
    { method: msg.method, messageClass: msg.messageClass, transactionId: msg.transactionId, attributes },
    { integrity: { key }, fingerprint },
  );
}

/** The vector with its padding bytes zeroed, as our encoder writes them. */
function zeroPadding(bytes: Uint8Array, msg: StunMessage): Uint8Array {
  const out = Uint8Array.from(bytes);
  attributeOffsets(msg.attributes).forEach((offset, i) => {
    const length = msg.attributes[i]!.value.length;
    out.fill(0, offset + 4 + length, offset + 4 + padded(length));
  });
  return out;
}

describe('RFC 5769 §2.1 sample request', () => {
  const bytes = hex(SAMPLE_REQUEST);
  const msg = decodeMessage(bytes);

  it('decodes as a Binding request with the six attributes in wire order', () => {
    assert.equal(msg.method, Method.Binding);
    assert.equal(msg.messageClass, MessageClass.Request);
    assert.equal(toHex(msg.transactionId), 'b7e7a701bc34d686fa87dfae');
    assert.deepEqual(
      msg.attributes.map((a) => a.type),
      [AttrType.Software, AttrType.Priority, AttrType.IceControlled, AttrType.Username, AttrType.MessageIntegrity, AttrType.Fingerprint],
    );
    assert.deepEqual(msg.raw, bytes);
  });

  it('carries the RFC parameters in its text and ICE attributes', () => {
    assert.equal(software.decode(getAttribute(msg, AttrType.Software)!), SAMPLE_REQUEST_PARAMS.software);
    assert.equal(username.decode(getAttribute(msg, AttrType.Username)!), SAMPLE_REQUEST_PARAMS.username);
    assert.equal(Buffer.from(getAttribute(msg, AttrType.Priority)!).readUInt32BE(0), SAMPLE_REQUEST_PARAMS.priority);
    assert.equal(toHex(getAttribute(msg, AttrType.IceControlled)!), SAMPLE_REQUEST_PARAMS.iceControlled);
  });

  it('verifies MESSAGE-INTEGRITY with the short-term password and FINGERPRINT', () => {
    assert.equal(verifyIntegrity(msg, shortKey), 'sha1');
    assert.equal(verifyFingerprint(msg), true);
  });

  it('fails MESSAGE-INTEGRITY with another password and FINGERPRINT after a flipped bit', () => {
    assert.equal(verifyIntegrity(msg, shortTermKey('VOkJxbRl1RmTxUk/WvJxBu')), false);
    const flipped = tampered(bytes, 30); // inside SOFTWARE
    assert.equal(verifyIntegrity(flipped, shortKey), false);
    assert.equal(verifyFingerprint(flipped), false);
  });

  it('is re-encoded byte for byte once the RFC padding (0x20) is zeroed', () => {
    const ours = reencode(msg, shortKey, true);
    const normalised = zeroPadding(bytes, msg);
    // Same bytes up to MESSAGE-INTEGRITY's value, which covers the padding and so differs.
    assert.equal(toHex(ours.subarray(0, 80)), toHex(normalised.subarray(0, 80)));
    const again = decodeMessage(ours);
    assert.equal(verifyIntegrity(again, shortKey), 'sha1');
    assert.equal(verifyFingerprint(again), true);
  });
});

describe('RFC 5769 §2.2 sample IPv4 response', () => {
  const bytes = hex(SAMPLE_IPV4_RESPONSE);
  const msg = decodeMessage(bytes);

  it('decodes as a Binding success response with SOFTWARE "test vector"', () => {
    assert.equal(msg.method, Method.Binding);
    assert.equal(msg.messageClass, MessageClass.SuccessResponse);
    assert.equal(toHex(msg.transactionId), SAMPLE_RESPONSE_PARAMS.transactionId);
    assert.equal(software.decode(getAttribute(msg, AttrType.Software)!), SAMPLE_RESPONSE_PARAMS.software);
  });

  it('maps to 192.0.2.1 port 32853', () => {
    assert.deepEqual(xorMappedAddress.decode(getAttribute(msg, AttrType.XorMappedAddress)!, msg.transactionId), SAMPLE_RESPONSE_PARAMS.ipv4);
    assert.deepEqual(reflexiveAddress(msg, { strict: true }), SAMPLE_RESPONSE_PARAMS.ipv4);
  });

  it('encodes 192.0.2.1 port 32853 to the RFC value bytes', () => {
    assert.equal(toHex(xorMappedAddress.encode(SAMPLE_RESPONSE_PARAMS.ipv4, msg.transactionId)), '0001a147e112a643');
  });

  it('verifies MESSAGE-INTEGRITY and FINGERPRINT', () => {
    assert.equal(verifyIntegrity(msg, shortKey), 'sha1');
    assert.equal(verifyFingerprint(msg), true);
  });

  it('fails both checks when the mapped address is altered', () => {
    const flipped = tampered(bytes, 43);
    assert.equal(verifyIntegrity(flipped, shortKey), false);
    assert.equal(verifyFingerprint(flipped), false);
  });
});

describe('RFC 5769 §2.3 sample IPv6 response', () => {
  const bytes = hex(SAMPLE_IPV6_RESPONSE);
  const msg = decodeMessage(bytes);

  it('maps to [2001:db8:1234:5678:11:2233:4455:6677] port 32853', () => {
    assert.deepEqual(xorMappedAddress.decode(getAttribute(msg, AttrType.XorMappedAddress)!, msg.transactionId), SAMPLE_RESPONSE_PARAMS.ipv6);
  });

  it('encodes the address to the RFC value bytes', () => {
    assert.equal(
      toHex(xorMappedAddress.encode(SAMPLE_RESPONSE_PARAMS.ipv6, msg.transactionId)),
      '0002a1470113a9faa5d3f179bc25f4b5bed2b9d9',
    );
  });

  it('verifies MESSAGE-INTEGRITY and FINGERPRINT', () => {
    assert.equal(verifyIntegrity(msg, shortKey), 'sha1');
    assert.equal(verifyFingerprint(msg), true);
  });

  it('is re-encoded byte for byte up to MESSAGE-INTEGRITY once padding is zeroed', () => {
    const ours = reencode(msg, shortKey, true);
    assert.equal(ours.length, bytes.length);
    const normalised = zeroPadding(bytes, msg);
    assert.equal(toHex(ours.subarray(0, 56)), toHex(normalised.subarray(0, 56)));
  });
});

describe('RFC 5769 §2.4 sample request with long-term authentication', () => {
  const bytes = hex(SAMPLE_LONG_TERM_REQUEST);
  const msg = decodeMessage(bytes);
  const p = SAMPLE_LONG_TERM_PARAMS;

  it('carries the RFC username, nonce and realm', () => {
    assert.equal(toHex(msg.transactionId), p.transactionId);
    assert.equal(username.decode(getAttribute(msg, AttrType.Username)!), p.username);
    assert.equal(nonce.decode(getAttribute(msg, AttrType.Nonce)!), p.nonce);
    assert.equal(realm.decode(getAttribute(msg, AttrType.Realm)!), p.realm);
    assert.equal(verifyFingerprint(msg), undefined);
  });

  it('SASLprep turns the RFC password into "TheMatrIX"', () => {
    assert.equal(saslPrep(p.passwordBeforeSaslPrep), p.password);
  });

  it('verifies MESSAGE-INTEGRITY with MD5(username:realm:SASLprep(password))', () => {
    const key = longTermKey(p.username, p.realm, saslPrep(p.passwordBeforeSaslPrep));
    assert.equal(verifyIntegrity(msg, key), 'sha1');
    assert.match(inspectIntegrity(msg, key).detail, /MESSAGE-INTEGRITY at offset 92 matches/);
  });

  it('fails MESSAGE-INTEGRITY with the unprepared password, which OpaqueString leaves as it is', () => {
    assert.equal(verifyIntegrity(msg, longTermKey(p.username, p.realm, p.passwordBeforeSaslPrep)), false);
  });

  it('is re-encoded byte for byte, MESSAGE-INTEGRITY included (its padding is already zero)', () => {
    const ours = encodeMessage(
      {
        method: Method.Binding,
        messageClass: MessageClass.Request,
        transactionId: hex(p.transactionId),
        attributes: [
          { type: AttrType.Username, value: username.encode(p.username) },
          { type: AttrType.Nonce, value: nonce.encode(p.nonce) },
          { type: AttrType.Realm, value: realm.encode(p.realm) },
        ],
      },
      { integrity: { key: longTermKey(p.username, p.realm, p.password) } },
    );
    assert.equal(toHex(ours), toHex(bytes));
  });
});
