import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { NatpunchError } from '../../src/errors.js';
import { generateIdentity } from '../../src/identity/identity.js';
import { decodeHandshakePayload } from '../../src/secure/handshake-payload.js';
import { NatpunchHandshake } from '../../src/secure/natpunch-handshake.js';

const alice = generateIdentity();
const bob = generateIdentity();

function assertOnlyNatpunchErrors(step: () => void): void {
  try {
    step();
  } catch (error) {
    assert.ok(NatpunchError.is(error), `unexpected ${String(error)}`);
  }
}

describe('handshake inputs from the network', () => {
  it('never make the identity payload decoder throw anything but NatpunchError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) =>
        assertOnlyNatpunchErrors(() => decodeHandshakePayload(bytes)),
      ),
    );
  });

  it('never make a responder reading message 1 throw anything but NatpunchError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const responder = new NatpunchHandshake({ identity: bob, initiator: false });
        assertOnlyNatpunchErrors(() => {
          responder.read(bytes);
          responder.write();
        });
      }),
      { numRuns: 200 },
    );
  });

  it('never let random bytes pass as message 2, and fail only with NatpunchError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const initiator = new NatpunchHandshake({ identity: alice, initiator: true, expectedPeerId: bob.peerId });
        initiator.write();
        assert.throws(
          () => initiator.read(bytes),
          (error: unknown) => NatpunchError.is(error),
        );
        assert.equal(initiator.complete, false);
      }),
      { numRuns: 200 },
    );
  });
});
