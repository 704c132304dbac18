import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { NatpunchError } from '../../src/errors.js';
import { decodeBase32, encodeBase32 } from '../../src/identity/base32.js';
import { generateIdentity } from '../../src/identity/identity.js';
import {
  InvalidPeerIdError,
  isPeerId,
  normalizePeerId,
  PEER_ID_LENGTH,
  peerIdFromPublicKey,
  publicKeyFromPeerId,
} from '../../src/identity/peer-id.js';

function assertInvalid(id: string, pattern: RegExp): void {
  assert.throws(
    () => publicKeyFromPeerId(id),
    (error: unknown) => {
      assert.ok(error instanceof InvalidPeerIdError);
      assert.equal(error.code, 'ERR_USAGE');
      assert.match(error.message, pattern);
      return true;
    },
  );
}

describe('base32', () => {
  it('encodes the RFC 4648 §10 test vectors in lowercase without padding', () => {
    const table: Array<[string, string]> = [
      ['', ''],
      ['f', 'my'],
      ['fo', 'mzxq'],
      ['foo', 'mzxw6'],
      ['foob', 'mzxw6yq'],
      ['fooba', 'mzxw6ytb'],
      ['foobar', 'mzxw6ytboi'],
    ];
    for (const [plain, encoded] of table) {
      assert.equal(encodeBase32(new TextEncoder().encode(plain)), encoded);
      assert.equal(new TextDecoder().decode(decodeBase32(encoded)), plain);
      assert.equal(new TextDecoder().decode(decodeBase32(encoded.toUpperCase())), plain);
    }
  });

  it('round-trips any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        assert.deepEqual(decodeBase32(encodeBase32(bytes)), bytes);
      }),
    );
  });

  it('throws only NatpunchError on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (text) => {
        try {
          decodeBase32(text);
        } catch (error) {
          assert.ok(NatpunchError.is(error), `unexpected ${String(error)}`);
        }
      }),
    );
  });
});

describe('peer ids', () => {
  it('are 56 lowercase base32 characters that map back to the public key', () => {
    const identity = generateIdentity();
    assert.equal(identity.peerId.length, PEER_ID_LENGTH);
    assert.equal(PEER_ID_LENGTH, 56);
    assert.match(identity.peerId, /^[a-z2-7]{56}$/);
    assert.deepEqual(publicKeyFromPeerId(identity.peerId), identity.publicKey);
  });

  it('round-trip every 32-byte key', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (key) => {
        assert.deepEqual(publicKeyFromPeerId(peerIdFromPublicKey(key)), key);
      }),
    );
  });

  it('are accepted in upper case and with surrounding whitespace, and normalise to lowercase', () => {
    const { peerId } = generateIdentity();
    assert.equal(normalizePeerId(` ${peerId.toUpperCase()}\n`), peerId);
  });

  it('reject a single mistyped character at any position', () => {
    const { peerId } = generateIdentity();
    for (let position = 0; position < peerId.length; position++) {
      const replacement = peerId[position] === 'q' ? 'r' : 'q';
      const typo = peerId.slice(0, position) + replacement + peerId.slice(position + 1);
      assert.throws(() => publicKeyFromPeerId(typo), InvalidPeerIdError, `typo at ${position} accepted`);
    }
  });

  it('reject two swapped neighbouring characters', () => {
    const { peerId } = generateIdentity();
    const index = [...peerId].findIndex((char, i) => i > 1 && char !== peerId[i + 1]);
    const swapped = peerId.slice(0, index) + peerId[index + 1] + peerId[index] + peerId.slice(index + 2);
    assertInvalid(swapped, /checksum mismatch, the id has a typo/);
  });

  it('reject a wrong length, naming the expected one', () => {
    const { peerId } = generateIdentity();
    assertInvalid(peerId.slice(0, -1), /length 55, expected 56/);
    assertInvalid('', /length 0, expected 56/);
  });

  it('reject characters outside the alphabet, naming the position', () => {
    const { peerId } = generateIdentity();
    assertInvalid(`${peerId.slice(0, 10)}1${peerId.slice(11)}`, /"1" at position 10/);
  });

  it('reject an unknown version', () => {
    const bytes = decodeBase32(generateIdentity().peerId);
    bytes[0] = 2;
    assertInvalid(encodeBase32(bytes), /version 2, expected 1/);
  });

  it('report validity without throwing through isPeerId', () => {
    assert.equal(isPeerId(generateIdentity().peerId), true);
    assert.equal(isPeerId('not-a-peer-id'), false);
  });

  it('refuse to encode a key that is not 32 bytes', () => {
    assert.throws(() => peerIdFromPublicKey(new Uint8Array(31)), RangeError);
  });
});
