import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { generateKeyPair } from '../../src/secure/dh-25519.js';
import { BASE_PATTERNS, handshakePattern, parseProtocolName } from '../../src/secure/handshake-pattern.js';
import { HandshakeState, type HandshakeStateOptions } from '../../src/secure/handshake-state.js';
import { assertNoiseError } from './helpers.js';

/** Both sides of a handshake with fresh keys, giving each what its pattern needs. */
function pair(patternName: string, prologue = new Uint8Array(0)): [HandshakeState, HandshakeState] {
  const pattern = handshakePattern(patternName);
  const initiatorStatic = generateKeyPair();
  const responderStatic = generateKeyPair();
  const psks = pattern.messages
    .flat()
    .filter((token) => token === 'psk')
    .map(() => randomBytes(32));
  const protocolName = `Noise_${patternName}_25519_ChaChaPoly_SHA256`;
  const common: Omit<HandshakeStateOptions, 'initiator'> = { protocolName, prologue, psks };
  return [
    new HandshakeState({ ...common, initiator: true, s: initiatorStatic, rs: responderStatic.publicKey }),
    new HandshakeState({ ...common, initiator: false, s: responderStatic, rs: initiatorStatic.publicKey }),
  ];
}

function run(initiator: HandshakeState, responder: HandshakeState): void {
  while (!initiator.isComplete) {
    const [writer, reader] = initiator.isMyTurn ? [initiator, responder] : [responder, initiator];
    const payload = randomBytes(writer.messageIndex * 7);
    assert.deepEqual(reader.readMessage(writer.writeMessage(payload)), new Uint8Array(payload));
  }
}

describe('handshake patterns', () => {
  it('place psk0 first in message 1 and pskN last in message N', () => {
    assert.deepEqual(handshakePattern('NNpsk0').messages, [
      ['psk', 'e'],
      ['e', 'ee'],
    ]);
    assert.deepEqual(handshakePattern('XXpsk3').messages[2], ['s', 'se', 'psk']);
    assert.deepEqual(handshakePattern('NNpsk0+psk2').messages, [
      ['psk', 'e'],
      ['e', 'ee', 'psk'],
    ]);
    assert.equal(handshakePattern('XX').psk, false);
  });

  it('know the pre-messages of K and IK', () => {
    const k = handshakePattern('K');
    assert.deepEqual([k.initiatorPreMessage, k.responderPreMessage, k.oneWay], [['s'], ['s'], true]);
    const ik = handshakePattern('IK');
    assert.deepEqual([ik.initiatorPreMessage, ik.responderPreMessage, ik.oneWay], [[], ['s'], false]);
  });

  it('refuse unknown patterns, out-of-range psk modifiers and other primitives as unsupported', () => {
    assertNoiseError(() => handshakePattern('ZZ'), 'unsupported', /"ZZ": unknown/);
    assertNoiseError(() => handshakePattern('NNpsk3'), 'unsupported', /psk3 names message 3 of 2/);
    assertNoiseError(
      () => parseProtocolName('Noise_XX_25519_ChaChaPoly_BLAKE2s'),
      'unsupported',
      /BLAKE2s, only 25519_ChaChaPoly_SHA256/,
    );
    assertNoiseError(() => parseProtocolName('XX'), 'unsupported');
  });
});

describe('HandshakeState', () => {
  for (const name of [...BASE_PATTERNS, 'XXpsk3', 'IKpsk2', 'NNpsk0+psk2']) {
    it(`completes ${name} with fresh keys and agrees on the hash and transport keys`, () => {
      const [initiator, responder] = pair(name);
      run(initiator, responder);
      assert.deepEqual(initiator.handshakeHash, responder.handshakeHash);
      const a = initiator.split();
      const b = responder.split();
      const message = randomBytes(100);
      assert.deepEqual(
        b.receive.decryptWithAd(new Uint8Array(0), a.send.encryptWithAd(new Uint8Array(0), message)),
        new Uint8Array(message),
      );
    });
  }

  it('fails on a prologue mismatch as soon as something is encrypted', () => {
    const [initiator] = pair('NN', new TextEncoder().encode('one'));
    const [, responder] = pair('NN', new TextEncoder().encode('two'));
    responder.readMessage(initiator.writeMessage());
    assertNoiseError(() => initiator.readMessage(responder.writeMessage()), 'decrypt-failed');
  });

  it('refuses to write or read out of turn, naming whose turn it is', () => {
    const [initiator, responder] = pair('XX');
    assertNoiseError(() => responder.writeMessage(), 'invalid-state', /peer's turn/);
    assertNoiseError(() => initiator.readMessage(new Uint8Array(32)), 'invalid-state', /local side's turn/);
  });

  it('rejects a truncated message as malformed and stays failed afterwards', () => {
    const [initiator, responder] = pair('XX');
    const message = initiator.writeMessage();
    assertNoiseError(
      () => responder.readMessage(message.subarray(0, 31)),
      'malformed-message',
      /too short for the ephemeral key/,
    );
    assertNoiseError(() => responder.readMessage(message), 'invalid-state', /already failed \(malformed-message\)/);
  });

  it('rejects a tampered encrypted static key as decrypt-failed', () => {
    const [initiator, responder] = pair('XX');
    responder.readMessage(initiator.writeMessage());
    const message = responder.writeMessage();
    message[40] = (message[40] as number) ^ 0x80;
    assertNoiseError(() => initiator.readMessage(message), 'decrypt-failed');
  });

  it('rejects an ephemeral key that is a low-order point as invalid-key', () => {
    const [, responder] = pair('NN');
    responder.readMessage(new Uint8Array(32));
    assertNoiseError(() => responder.writeMessage(), 'invalid-key');
  });

  it('demands the keys its pattern needs up front', () => {
    assertNoiseError(
      () => new HandshakeState({ protocolName: 'Noise_IK_25519_ChaChaPoly_SHA256', initiator: true }),
      'invalid-state',
      /needs rs \(remote static key, pre-message\), s \(local static key, sent in a message\)$/,
    );
    assertNoiseError(
      () => new HandshakeState({ protocolName: 'Noise_NNpsk0_25519_ChaChaPoly_SHA256', initiator: true }),
      'invalid-state',
      /needs 1 psks of 32 bytes, got 0/,
    );
  });

  it('refuses to split before completion', () => {
    const [initiator] = pair('XX');
    assertNoiseError(() => initiator.split(), 'invalid-state');
  });

  it('derives transport keys for another label that differ from the Split() keys', () => {
    const [initiator, responder] = pair('NN');
    run(initiator, responder);
    const plain = initiator.split().send.encryptWithAd(new Uint8Array(0), new Uint8Array(16));
    const labelled = initiator
      .split(new TextEncoder().encode('x'))
      .send.encryptWithAd(new Uint8Array(0), new Uint8Array(16));
    assert.notDeepEqual(plain, labelled);
  });
});
