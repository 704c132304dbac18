import assert from 'node:assert/strict';
import { generateIdentity, type Identity } from '../../src/identity/identity.js';
import { NoiseError, type NoiseFailure } from '../../src/secure/errors.js';
import { NatpunchHandshake, type NatpunchHandshakeOptions } from '../../src/secure/natpunch-handshake.js';
import type { SecureSession } from '../../src/secure/secure-session.js';

/** Asserts that `fn` throws a NoiseError (code ERR_NOISE) with this reason and, if given, message. */
export function assertNoiseError(fn: () => unknown, reason: NoiseFailure, message?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof NoiseError, `expected NoiseError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_NOISE');
    assert.equal(error.reason, reason);
    if (message) assert.match(error.message, message);
    return true;
  });
}

/** Moves messages between the two sides until neither has anything to send. */
export function exchange(
  initiator: NatpunchHandshake,
  responder: NatpunchHandshake,
  tamper?: (message: Uint8Array, index: number) => void,
): void {
  let index = 0;
  for (;;) {
    const fromInitiator = initiator.write();
    const message = fromInitiator ?? responder.write();
    if (message === null) return;
    tamper?.(message, index++);
    (fromInitiator ? responder : initiator).read(message);
  }
}

type SideOptions = Partial<Omit<NatpunchHandshakeOptions, 'identity' | 'initiator'>>;

/** An initiator (alice, dialling bob) and a responder (bob), not yet started. */
export function sides(
  alice: Identity,
  bob: Identity,
  options: { initiator?: SideOptions; responder?: SideOptions } = {},
): [NatpunchHandshake, NatpunchHandshake] {
  return [
    new NatpunchHandshake({ identity: alice, initiator: true, expectedPeerId: bob.peerId, ...options.initiator }),
    new NatpunchHandshake({ identity: bob, initiator: false, ...options.responder }),
  ];
}

/** The two sessions of a completed handshake between fresh identities. */
export function establishedSessions(options: SideOptions = {}): [SecureSession, SecureSession] {
  const [initiator, responder] = sides(generateIdentity(), generateIdentity(), {
    initiator: options,
    responder: options,
  });
  exchange(initiator, responder);
  return [initiator.session(), responder.session()];
}

export const text = (value: string): Uint8Array => new TextEncoder().encode(value);
