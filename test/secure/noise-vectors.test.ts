import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { keyPairFromPrivateKey } from '../../src/secure/dh-25519.js';
import { SUPPORTED_SUITE } from '../../src/secure/handshake-pattern.js';
import { HandshakeState } from '../../src/secure/handshake-state.js';

interface Vector {
  protocol_name: string;
  init_prologue: string;
  init_psks?: string[];
  init_static?: string;
  init_ephemeral: string;
  init_remote_static?: string;
  resp_prologue: string;
  resp_psks?: string[];
  resp_static?: string;
  resp_ephemeral?: string;
  resp_remote_static?: string;
  handshake_hash: string;
  messages: Array<{ payload: string; ciphertext: string }>;
}

// dist/test/secure/ -> the source tree's test/fixtures (fixtures are data, not compiled).
const fixture = fileURLToPath(
  new URL('../../../test/fixtures/noise/noise-cacophony-25519-chachapoly.json', import.meta.url),
);
const { vectors } = JSON.parse(readFileSync(fixture, 'utf8')) as { vectors: Vector[] };
const ours = vectors.filter((vector) => vector.protocol_name.endsWith(`_${SUPPORTED_SUITE}`));

const bytes = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex, 'hex'));
const hex = (data: Uint8Array): string => Buffer.from(data).toString('hex');
const optional = <T, R>(value: T | undefined, map: (value: T) => R): R | undefined =>
  value === undefined ? undefined : map(value);

function handshakeStates(vector: Vector): [HandshakeState, HandshakeState] {
  const initiator = new HandshakeState({
    protocolName: vector.protocol_name,
    initiator: true,
    prologue: bytes(vector.init_prologue),
    s: optional(vector.init_static, (key) => keyPairFromPrivateKey(bytes(key))),
    e: keyPairFromPrivateKey(bytes(vector.init_ephemeral)),
    rs: optional(vector.init_remote_static, bytes),
    psks: (vector.init_psks ?? []).map(bytes),
  });
  const responder = new HandshakeState({
    protocolName: vector.protocol_name,
    initiator: false,
    prologue: bytes(vector.resp_prologue),
    s: optional(vector.resp_static, (key) => keyPairFromPrivateKey(bytes(key))),
    e: optional(vector.resp_ephemeral, (key) => keyPairFromPrivateKey(bytes(key))),
    rs: optional(vector.resp_remote_static, bytes),
    psks: (vector.resp_psks ?? []).map(bytes),
  });
  return [initiator, responder];
}

describe('cacophony Noise vectors for 25519_ChaChaPoly_SHA256', () => {
  it('cover every pattern of the spec: one-way, fundamental, deferred and psk', () => {
    assert.equal(ours.length, 59);
    for (const name of [
      'Noise_XX_25519_ChaChaPoly_SHA256',
      'Noise_IK_25519_ChaChaPoly_SHA256',
      'Noise_NN_25519_ChaChaPoly_SHA256',
    ]) {
      assert.ok(
        ours.some((vector) => vector.protocol_name === name),
        name,
      );
    }
  });

  for (const vector of ours) {
    it(`reproduce ${vector.protocol_name} byte for byte`, () => {
      const [initiator, responder] = handshakeStates(vector);
      const handshakeLength = initiator.pattern.messages.length;
      vector.messages.slice(0, handshakeLength).forEach((message, index) => {
        const [writer, reader] = index % 2 === 0 ? [initiator, responder] : [responder, initiator];
        assert.equal(writer.isMyTurn, true);
        assert.equal(
          hex(writer.writeMessage(bytes(message.payload))),
          message.ciphertext,
          `handshake message ${index}`,
        );
        assert.equal(hex(reader.readMessage(bytes(message.ciphertext))), message.payload, `handshake payload ${index}`);
      });
      assert.equal(initiator.isComplete && responder.isComplete, true);
      assert.equal(hex(initiator.handshakeHash), vector.handshake_hash);
      assert.equal(hex(responder.handshakeHash), vector.handshake_hash);
      assert.deepEqual(initiator.remoteStaticKey, responder.localStaticKey);

      const initiatorKeys = initiator.split();
      const responderKeys = responder.split();
      vector.messages.slice(handshakeLength).forEach((message, offset) => {
        const index = handshakeLength + offset;
        const fromInitiator = initiator.pattern.oneWay || index % 2 === 0;
        const [send, receive] = fromInitiator
          ? [initiatorKeys.send, responderKeys.receive]
          : [responderKeys.send, initiatorKeys.receive];
        const empty = new Uint8Array(0);
        assert.equal(
          hex(send.encryptWithAd(empty, bytes(message.payload))),
          message.ciphertext,
          `transport message ${index}`,
        );
        assert.equal(
          hex(receive.decryptWithAd(empty, bytes(message.ciphertext))),
          message.payload,
          `transport payload ${index}`,
        );
      });

      // The same transport messages through ChaChaPolyKey (the datagram cipher's AEAD), natively
      // where native/aead is built and with node:crypto: the nonce is the message's number in its direction.
      for (const native of [true, false]) {
        const keys = [initiator.split().send.chaChaPolyKey({ native }), responder.split().send.chaChaPolyKey({ native })];
        const sent = [0, 0];
        vector.messages.slice(handshakeLength).forEach((message, offset) => {
          const from = initiator.pattern.oneWay || (handshakeLength + offset) % 2 === 0 ? 0 : 1;
          const plaintext = bytes(message.payload);
          const out = new Uint8Array(plaintext.length + 16);
          keys[from]!.sealInto(sent[from]!++, new Uint8Array(0), plaintext, out, 0);
          assert.equal(hex(out), message.ciphertext, `${keys[from]!.implementation} transport message ${handshakeLength + offset}`);
        });
      }
    });
  }
});
