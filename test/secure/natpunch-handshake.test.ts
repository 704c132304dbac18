import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { UsageError } from '../../src/errors.js';
import { generateIdentity } from '../../src/identity/identity.js';
import { InvalidPeerIdError } from '../../src/identity/peer-id.js';
import { generateKeyPair } from '../../src/secure/dh-25519.js';
import { NoiseError, type NoiseFailure } from '../../src/secure/errors.js';
import { decodeHandshakePayload, encodeHandshakePayload } from '../../src/secure/handshake-payload.js';
import { HandshakeState } from '../../src/secure/handshake-state.js';
import { NATPUNCH_PROLOGUE, NATPUNCH_PROTOCOL_NAME, NatpunchHandshake } from '../../src/secure/natpunch-handshake.js';
import { assertNoiseError, establishedSessions, exchange, sides, text } from './helpers.js';

describe('the natpunch handshake', () => {
  it('authenticates both peers: the initiator reaches whom it dialled, the responder learns who called', () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const [initiator, responder] = sides(alice, bob);
    exchange(initiator, responder);
    assert.equal(initiator.complete, true);
    assert.equal(responder.complete, true);
    assert.equal(initiator.session().remotePeerId, bob.peerId);
    assert.equal(responder.session().remotePeerId, alice.peerId);
    assert.deepEqual(initiator.session().handshakeHash, responder.session().handshakeHash);
  });

  it("takes three messages: 32 bytes, then each side's key, identity and signature", () => {
    const [initiator, responder] = sides(generateIdentity(), generateIdentity());
    const lengths: number[] = [];
    exchange(initiator, responder, (message) => lengths.push(message.length));
    assert.deepEqual(lengths, [32, 32 + 48 + 96 + 16, 48 + 96 + 16]);
  });

  it('gives both sides mirrored 16-byte reset tokens, distinct per direction and per session', () => {
    const [a, b] = establishedSessions();
    const [c] = establishedSessions();
    assert.equal(a.resetTokens.send.length, 16);
    assert.deepEqual(a.resetTokens.send, b.resetTokens.receive);
    assert.deepEqual(b.resetTokens.send, a.resetTokens.receive);
    assert.notDeepEqual(a.resetTokens.send, a.resetTokens.receive);
    assert.notDeepEqual(a.resetTokens.send, c.resetTokens.send);
  });

  it('gives sessions that carry stream messages both ways', () => {
    const [initiator, responder] = sides(generateIdentity(), generateIdentity());
    exchange(initiator, responder);
    const a = initiator.session();
    const b = responder.session();
    assert.deepEqual(b.decrypt(a.encrypt(text('hello bob'))), text('hello bob'));
    assert.deepEqual(a.decrypt(b.encrypt(text('hello alice'))), text('hello alice'));
    assert.equal(initiator.session(), a, 'session() returns the same session every time');
  });

  it('accepts a responder-side expected peer id and any letter case of ids', () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const [initiator, responder] = sides(alice, bob, {
      initiator: { expectedPeerId: bob.peerId.toUpperCase() },
      responder: { expectedPeerId: alice.peerId },
    });
    exchange(initiator, responder);
    assert.equal(responder.session().remotePeerId, alice.peerId);
  });

  it('rejects a responder that is not the expected peer, as peer-mismatch', () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const mallory = generateIdentity();
    const initiator = new NatpunchHandshake({ identity: alice, initiator: true, expectedPeerId: bob.peerId });
    const impostor = new NatpunchHandshake({ identity: mallory, initiator: false });
    impostor.read(initiator.write() as Uint8Array);
    assertNoiseError(
      () => initiator.read(impostor.write() as Uint8Array),
      'peer-mismatch',
      new RegExp(`expected peer ${bob.peerId}, the remote proved to be ${mallory.peerId}`),
    );
    assert.equal(initiator.complete, false);
    assertNoiseError(() => initiator.session(), 'invalid-state', /already failed \(peer-mismatch\)/);
  });

  it('rejects an initiator that is not the peer the responder expects', () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const [initiator, responder] = sides(alice, bob, { responder: { expectedPeerId: generateIdentity().peerId } });
    assert.throws(
      () => exchange(initiator, responder),
      (error: unknown) => error instanceof NoiseError && error.reason === 'peer-mismatch',
    );
    assert.equal(responder.complete, false);
  });

  it("rejects a man in the middle who presents the real peer's signed identity with its own key, as bad-signature", () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    // Mallory dials Bob to obtain Bob's genuine identity payload (Ed25519 key + signature)...
    const toBob = new HandshakeState({
      protocolName: NATPUNCH_PROTOCOL_NAME,
      initiator: true,
      prologue: NATPUNCH_PROLOGUE,
      s: generateKeyPair(),
    });
    const bobSide = new NatpunchHandshake({ identity: bob, initiator: false });
    bobSide.read(toBob.writeMessage());
    const bobsPayload = toBob.readMessage(bobSide.write() as Uint8Array);
    assert.deepEqual(decodeHandshakePayload(bobsPayload).identityKey, bob.publicKey);
    // ...and replays it to Alice, who dialled Bob, from a handshake keyed with Mallory's static key.
    const initiator = new NatpunchHandshake({ identity: alice, initiator: true, expectedPeerId: bob.peerId });
    const mallory = new HandshakeState({
      protocolName: NATPUNCH_PROTOCOL_NAME,
      initiator: false,
      prologue: NATPUNCH_PROLOGUE,
      s: generateKeyPair(),
    });
    mallory.readMessage(initiator.write() as Uint8Array);
    const forged = mallory.writeMessage(encodeHandshakePayload(decodeHandshakePayload(bobsPayload)));
    assertNoiseError(() => initiator.read(forged), 'bad-signature', /does not cover the Noise static key/);
    assert.equal(initiator.remotePeerId, undefined);
  });

  it('lets a relay that forwards bytes see only ciphertext', () => {
    const [initiator, responder] = sides(generateIdentity(), generateIdentity());
    const seen: Uint8Array[] = [];
    exchange(initiator, responder, (message) => seen.push(message.slice()));
    const secret = text('the secret plaintext');
    const packet = initiator.session().encrypt(secret);
    seen.push(packet);
    const needle = Buffer.from(secret);
    assert.equal(
      seen.some((message) => Buffer.from(message).includes(needle)),
      false,
    );
    assert.deepEqual(responder.session().decrypt(packet), secret);
  });

  for (const index of [0, 1, 2]) {
    it(`rejects a flipped bit in handshake message ${index + 1} and stays failed`, () => {
      const [initiator, responder] = sides(generateIdentity(), generateIdentity());
      const reasons: NoiseFailure[] = [];
      try {
        exchange(initiator, responder, (message, at) => {
          if (at === index) message[message.length - 1] = (message[message.length - 1] as number) ^ 1;
        });
      } catch (error) {
        assert.ok(error instanceof NoiseError);
        reasons.push(error.reason);
      }
      // Message 1 is plaintext (an ephemeral key): the damage shows at the next decryption.
      assert.deepEqual(reasons, ['decrypt-failed']);
      assert.equal(initiator.complete && responder.complete, false);
    });
  }

  it('fails when the two sides disagree on the session context', () => {
    const [initiator, responder] = sides(generateIdentity(), generateIdentity(), {
      initiator: { prologue: text('session 1') },
      responder: { prologue: text('session 2') },
    });
    assert.throws(
      () => exchange(initiator, responder),
      (error: unknown) => error instanceof NoiseError && error.reason === 'decrypt-failed',
    );
  });

  it('completes with matching session contexts, binding the hash to them', () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const hashes = ['one', 'two'].map((context) => {
      const [initiator, responder] = sides(alice, bob, {
        initiator: { prologue: text(context) },
        responder: { prologue: text(context) },
      });
      exchange(initiator, responder);
      return Buffer.from(initiator.session().handshakeHash).toString('hex');
    });
    assert.notEqual(hashes[0], hashes[1]);
  });

  it('returns null from write() while waiting, and refuses read() out of turn', () => {
    const [initiator, responder] = sides(generateIdentity(), generateIdentity());
    assert.equal(responder.write(), null);
    assertNoiseError(() => initiator.read(new Uint8Array(32)), 'invalid-state', /our turn to write/);
    assertNoiseError(() => initiator.session(), 'invalid-state', /before the handshake completed/);
  });

  it('refuses a first message that carries a payload', () => {
    const [, responder] = sides(generateIdentity(), generateIdentity());
    const sender = new HandshakeState({
      protocolName: NATPUNCH_PROTOCOL_NAME,
      initiator: true,
      prologue: NATPUNCH_PROLOGUE,
      s: generateKeyPair(),
    });
    assertNoiseError(
      () => responder.read(sender.writeMessage(text('early data'))),
      'malformed-message',
      /payload length 10, expected 0/,
    );
  });

  it('refuses a malformed identity payload as bad-payload', () => {
    const initiator = new NatpunchHandshake({
      identity: generateIdentity(),
      initiator: true,
      expectedPeerId: generateIdentity().peerId,
    });
    const responder = new HandshakeState({
      protocolName: NATPUNCH_PROTOCOL_NAME,
      initiator: false,
      prologue: NATPUNCH_PROLOGUE,
      s: generateKeyPair(),
    });
    responder.readMessage(initiator.write() as Uint8Array);
    assertNoiseError(
      () => initiator.read(responder.writeMessage(randomBytes(95))),
      'bad-payload',
      /length 95, expected 96/,
    );
  });

  it('requires the initiator to name its peer, with a usage error', () => {
    assert.throws(
      () => new NatpunchHandshake({ identity: generateIdentity(), initiator: true }),
      (error: unknown) => error instanceof UsageError && error.code === 'ERR_USAGE',
    );
    assert.throws(
      () => new NatpunchHandshake({ identity: generateIdentity(), initiator: true, expectedPeerId: 'nonsense' }),
      (error: unknown) => error instanceof InvalidPeerIdError && error.code === 'ERR_USAGE',
    );
  });
});

describe('secure sessions on a stream', () => {
  it('reject a tampered message and refuse everything after it', () => {
    const [initiator, responder] = sides(generateIdentity(), generateIdentity());
    exchange(initiator, responder);
    const a = initiator.session();
    const b = responder.session();
    const first = a.encrypt(text('first'));
    const second = a.encrypt(text('second'));
    first[0] = (first[0] as number) ^ 1;
    assertNoiseError(() => b.decrypt(first), 'decrypt-failed');
    assertNoiseError(() => b.decrypt(second), 'invalid-state', /earlier message failed \(decrypt-failed\)/);
  });

  it('reject messages delivered out of order', () => {
    const [initiator, responder] = sides(generateIdentity(), generateIdentity());
    exchange(initiator, responder);
    const a = initiator.session();
    a.encrypt(text('lost'));
    assertNoiseError(() => responder.session().decrypt(a.encrypt(text('second'))), 'decrypt-failed');
  });

  it('refuse a plaintext that does not fit one Noise message', () => {
    const [initiator, responder] = sides(generateIdentity(), generateIdentity());
    exchange(initiator, responder);
    assert.equal(initiator.session().encrypt(new Uint8Array(65519)).length, 65535);
    assertNoiseError(() => initiator.session().encrypt(new Uint8Array(65520)), 'message-too-large');
  });
});
