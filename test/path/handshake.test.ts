import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AbortedError, NatpunchError } from '../../src/errors.js';
import { generateIdentity } from '../../src/identity/identity.js';
import { FrameKind } from '../../src/path/frame.js';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, HANDSHAKE_INITIAL_RTO_MS, HANDSHAKE_MAX_RTO_MS, MAX_DROPPED_MESSAGES, MAX_EXCHANGES, PathHandshake } from '../../src/path/handshake.js';
import type { RawPath } from '../../src/path/raw-path.js';
import { NoiseError } from '../../src/secure/errors.js';
import { FakeClock } from '../transport/fake-clock.js';
import { rawLink } from './links.js';
import { CONTEXT, alice, bob, drive, handshakes, settled } from './sessions.js';

const text = (value: string): Uint8Array => new TextEncoder().encode(value);

/** Wraps `path` so that frames for which `drop(frame)` is true are not sent. */
function dropping(path: RawPath, drop: (frame: Uint8Array) => boolean): RawPath {
  return Object.assign(Object.create(path) as RawPath, {
    send(frame: Uint8Array) {
      if (!drop(frame)) path.send(frame);
    },
  });
}

/** Records the fake time of every frame sent on `path`. */
function timed(path: RawPath, clock: FakeClock): RawPath & { sentAt: number[] } {
  const sentAt: number[] = [];
  return Object.assign(Object.create(path) as RawPath, {
    sentAt,
    send(frame: Uint8Array) {
      sentAt.push(clock.now());
      path.send(frame);
    },
  });
}

/** The two sessions talk: a datagram sealed by one opens on the other, both ways. */
function assertSessionsMatch(a: { datagram: { seal(p: Uint8Array): Uint8Array; open(p: Uint8Array): Uint8Array } }, b: typeof a): void {
  assert.deepEqual(b.datagram.open(a.datagram.seal(text('to b'))), text('to b'));
  assert.deepEqual(a.datagram.open(b.datagram.seal(text('to a'))), text('to a'));
}

describe('the handshake as datagrams (PathHandshake)', { timeout: 60_000 }, () => {
  it('completes over a clean link, each side proving the identity the other expects', async () => {
    const clock = new FakeClock();
    const { a, b } = rawLink({ seed: 1 });
    const [initiator, responder] = handshakes({ clock });
    responder.offer(b);
    initiator.offer(a);
    const [atAlice, atBob] = await Promise.all([initiator.result, responder.result]);
    assert.equal(atAlice.session.remotePeerId, bob.peerId);
    assert.equal(atBob.session.remotePeerId, alice.peerId);
    assert.equal(atAlice.path, a);
    assert.equal(atBob.path, b);
    assert.equal(atAlice.rttMs, 0, 'fake time did not move: the message pair took 0 ms');
    assertSessionsMatch(atAlice.session, atBob.session);
  });

  for (const seed of [3, 5, 8, 13, 21, 34]) {
    it(`completes with 30 % loss both ways (seed ${seed})`, async () => {
      const clock = new FakeClock();
      const { a, b, link } = rawLink({ seed, loss: 0.3 });
      const [initiator, responder] = handshakes({ clock });
      responder.offer(b);
      initiator.offer(a);
      const both = Promise.all([initiator.result, responder.result]);
      await drive(clock, settled(both), { limitMs: DEFAULT_HANDSHAKE_TIMEOUT_MS });
      const [atAlice, atBob] = await both;
      assertSessionsMatch(atAlice.session, atBob.session);
      assert.ok(link.stats.aToB.sent >= 2 && link.stats.bToA.sent >= 1);
    });
  }

  it('completes when message 3 is lost: the responder repeats message 2 and the initiator answers it again', async () => {
    const clock = new FakeClock();
    const { a, b, link } = rawLink({ seed: 2 });
    let dropped = 0;
    // HANDSHAKE frames carry the message index 0, 1, 2: message 3 is index 2.
    const lossy = dropping(a, (frame) => frame[0] === FrameKind.Handshake && frame[1] === 2 && dropped++ === 0);
    const [initiator, responder] = handshakes({ clock });
    responder.offer(b);
    initiator.offer(lossy);
    const atAlice = await initiator.result;
    const bobDone = settled(responder.result);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(bobDone(), false, 'bob waits for message 3');
    const took = await drive(clock, bobDone, { limitMs: 1_000 });
    assert.ok(took >= HANDSHAKE_INITIAL_RTO_MS && took < 2 * HANDSHAKE_INITIAL_RTO_MS, `bob completed ${took} ms later`);
    const atBob = await responder.result;
    assert.equal(dropped, 2, 'message 3 went twice');
    assert.equal(link.stats.bToA.sent, 2, 'message 2 went twice');
    assert.equal(atBob.rttMs, undefined, 'no RTT from a repeated message');
    assertSessionsMatch(atAlice.session, atBob.session);
  });

  it('fails with a clear error after the timeout when the other side is silent, repeating with back-off until then', async () => {
    const clock = new FakeClock();
    const { a } = rawLink({ seed: 4 });
    const path = timed(a, clock);
    const [initiator] = handshakes({ clock });
    initiator.offer(path);
    const failed = settled(initiator.result);
    clock.advance(DEFAULT_HANDSHAKE_TIMEOUT_MS - 1);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(failed(), false);
    clock.advance(1);
    await assert.rejects(initiator.result, (error: unknown) => {
      assert.ok(error instanceof NatpunchError);
      assert.equal(error.code, 'ERR_NOISE');
      assert.equal(error.message, `handshake: no answer within ${DEFAULT_HANDSHAKE_TIMEOUT_MS} ms`);
      return true;
    });
    const expected: number[] = [];
    for (let at = 0, rto = HANDSHAKE_INITIAL_RTO_MS; at < DEFAULT_HANDSHAKE_TIMEOUT_MS; at += rto, rto = Math.min(2 * rto, HANDSHAKE_MAX_RTO_MS)) expected.push(at);
    assert.deepEqual(path.sentAt, expected);
    clock.advance(10_000);
    assert.equal(path.sentAt.length, expected.length, 'nothing sent after the failure');
  });

  it('honours a shorter timeoutMs', async () => {
    const clock = new FakeClock();
    const [initiator] = handshakes({ clock, timeoutMs: 500 });
    initiator.offer(rawLink({ seed: 6 }).a);
    clock.advance(500);
    await assert.rejects(initiator.result, /handshake: no answer within 500 ms/);
  });

  it('refuses a responder that proves another identity than expectedPeerId, and says so when it gives up', async () => {
    const clock = new FakeClock();
    const { a, b } = rawLink({ seed: 7 });
    const carol = generateIdentity();
    const [initiator, responder] = handshakes({ clock, expectedPeerId: carol.peerId });
    responder.offer(b);
    initiator.offer(timed(a, clock));
    // Anyone on the path could have made that message 2 with their own keys: it is dropped, not
    // believed, and the handshake waits for a genuine one until its time is up.
    await drive(clock, settled(initiator.result), { stepMs: 100, limitMs: DEFAULT_HANDSHAKE_TIMEOUT_MS + 1_000 });
    await assert.rejects(initiator.result, (error: unknown) => {
      assert.ok(error instanceof NatpunchError);
      assert.equal(error.code, 'ERR_NOISE');
      assert.match(error.message, /refused.*natpunch handshake: expected peer/);
      assert.ok(error.cause instanceof NoiseError && error.cause.reason === 'peer-mismatch');
      return true;
    });
    // Bob never gets message 3, and gives up in his turn.
    await drive(clock, settled(responder.result), { stepMs: 100, limitMs: DEFAULT_HANDSHAKE_TIMEOUT_MS + 1_000 });
    await assert.rejects(responder.result, /no answer within/);
  });

  it('binds the responder to the first path that brings message 1, of several offered', async () => {
    const clock = new FakeClock();
    const unused = rawLink({ seed: 9, name: 'unused' });
    const chosen = rawLink({ seed: 10, name: 'chosen' });
    const late = rawLink({ seed: 11, name: 'late' });
    const [initiator, responder] = handshakes({ clock });
    responder.offer(unused.b);
    responder.offer(chosen.b);
    responder.offer(late.b);
    initiator.offer(chosen.a);
    initiator.offer(late.a);
    const [atAlice, atBob] = await Promise.all([initiator.result, responder.result]);
    assert.equal(atAlice.path, chosen.a, 'the initiator starts on the first path offered');
    assert.equal(atBob.path, chosen.b);
    assert.equal(unused.link.stats.bToA.sent + late.link.stats.bToA.sent, 0, 'the responder answered only on the chosen path');
    assert.equal(late.link.stats.aToB.sent, 0, 'the initiator used one path');
  });

  it('answers a different message 0 on a second path too, and completes with the exchange whose message 2 verifies', async () => {
    const clock = new FakeClock();
    const first = rawLink({ seed: 12, name: 'first' });
    const second = rawLink({ seed: 13, name: 'second' });
    const carol = generateIdentity();
    const responder = new PathHandshake({ identity: bob, initiator: false, expectedPeerId: alice.peerId, context: CONTEXT, clock });
    // carol dials bob first on the second path: her message 0 proves nothing, so bob answers it.
    const impostor = new PathHandshake({ identity: carol, initiator: true, expectedPeerId: bob.peerId, context: CONTEXT, clock });
    const [initiator] = handshakes({ clock });
    responder.offer(first.b);
    responder.offer(second.b);
    impostor.offer(second.a);
    await new Promise((resolve) => setImmediate(resolve));
    initiator.offer(first.a);
    const both = Promise.all([initiator.result, responder.result]);
    await drive(clock, settled(both), { limitMs: 2_000 });
    const [atAlice, atBob] = await both;
    assert.equal(atBob.path, first.b);
    // Not carol: her message 2 was refused, as she is not the peer bob expects.
    assert.equal(atBob.session.remotePeerId, alice.peerId);
    assertSessionsMatch(atAlice.session, atBob.session);
    assert.ok(second.link.stats.bToA.sent > 0, 'bob answered carol too');
    impostor.close();
  });

  for (const order of ['before', 'after'] as const) {
    it(`a forged message 0 ${order} the genuine one costs a round trip, not the handshake timeout`, async () => {
      const clock = new FakeClock();
      const { a, b } = rawLink({ seed: 19 });
      const [initiator, responder] = handshakes({ clock });
      responder.offer(b);
      // A forger on the path (or spoofing alice's address) sends a message 0 of its own: an ephemeral key.
      const forged = Uint8Array.of(FrameKind.Handshake, 0, ...new Uint8Array(32).fill(9));
      if (order === 'before') b.inject(forged);
      initiator.offer(a);
      if (order === 'after') b.inject(forged);
      const both = Promise.all([initiator.result, responder.result]);
      const took = await drive(clock, settled(both), { limitMs: 5_000 });
      const [atAlice, atBob] = await both;
      assertSessionsMatch(atAlice.session, atBob.session);
      assert.ok(took < 2_000, `${took} ms of fake time`);
    });
  }

  it('refuses a message 0 carrying a low-order key (its answer cannot be written) and completes with the genuine one', async () => {
    const clock = new FakeClock();
    const { a, b } = rawLink({ seed: 23 });
    const [initiator, responder] = handshakes({ clock });
    responder.offer(b);
    b.inject(Uint8Array.of(FrameKind.Handshake, 0, ...new Uint8Array(32)));
    initiator.offer(a);
    const both = Promise.all([initiator.result, responder.result]);
    assert.ok(await drive(clock, settled(both), { limitMs: 5_000 }) < 1_000);
    const [atAlice, atBob] = await both;
    assertSessionsMatch(atAlice.session, atBob.session);
  });

  it(`a flood of different messages 0 ends the handshake after ${MAX_DROPPED_MESSAGES}, keeping at most ${MAX_EXCHANGES} exchanges`, async () => {
    const clock = new FakeClock();
    const { b, link } = rawLink({ seed: 22 });
    const [, responder] = handshakes({ clock });
    responder.offer(b);
    for (let i = 0; i <= MAX_DROPPED_MESSAGES; i++) b.inject(Uint8Array.of(FrameKind.Handshake, 0, ...new Uint8Array(32).fill(i + 1)));
    await drive(clock, settled(responder.result), { limitMs: 100 });
    await assert.rejects(responder.result, /16 messages refused or superseded/);
    assert.equal(link.stats.bToA.sent, MAX_DROPPED_MESSAGES, 'one answer per message 0 until it gave up');
  });

  it('ignores a forged message 2 on its path and completes with the genuine one', async () => {
    const clock = new FakeClock();
    const { a, b } = rawLink({ seed: 18 });
    const [initiator, responder] = handshakes({ clock });
    responder.offer(b);
    initiator.offer(a);
    a.inject(Uint8Array.of(FrameKind.Handshake, 1, ...new Uint8Array(200).fill(7)));
    const both = Promise.all([initiator.result, responder.result]);
    await drive(clock, settled(both), { limitMs: 2_000 });
    const [atAlice, atBob] = await both;
    assertSessionsMatch(atAlice.session, atBob.session);
  });

  it(`gives up after ${MAX_DROPPED_MESSAGES} refused messages, naming the last refusal`, async () => {
    const clock = new FakeClock();
    const { a } = rawLink({ seed: 20 });
    const [initiator] = handshakes({ clock });
    initiator.offer(a);
    for (let i = 0; i <= MAX_DROPPED_MESSAGES; i++) a.inject(Uint8Array.of(FrameKind.Handshake, 1, ...new Uint8Array(200).fill(i)));
    await drive(clock, settled(initiator.result), { limitMs: 100 });
    await assert.rejects(initiator.result, (error: unknown) => error instanceof NatpunchError && error.cause instanceof NoiseError && /16 messages refused/.test(error.message));
  });

  it('rejects with AbortedError when its signal aborts, and sends nothing more', async () => {
    const clock = new FakeClock();
    const controller = new AbortController();
    const path = timed(rawLink({ seed: 14 }).a, clock);
    const [initiator] = handshakes({ clock, signal: controller.signal });
    initiator.offer(path);
    clock.advance(HANDSHAKE_INITIAL_RTO_MS);
    controller.abort();
    await assert.rejects(initiator.result, (error: unknown) => {
      assert.ok(error instanceof AbortedError);
      assert.equal(error.code, 'ERR_ABORTED');
      assert.equal(error.message, 'handshake aborted');
      return true;
    });
    const sent = path.sentAt.length;
    clock.advance(DEFAULT_HANDSHAKE_TIMEOUT_MS);
    assert.equal(path.sentAt.length, sent);
  });

  it('rejects with AbortedError when its signal has already aborted', async () => {
    const [initiator] = handshakes({ clock: new FakeClock(), signal: AbortSignal.abort() });
    await assert.rejects(initiator.result, AbortedError);
  });

  it('stops repeating when closed, failing a handshake still running with the error given', async () => {
    const clock = new FakeClock();
    const path = timed(rawLink({ seed: 15 }).a, clock);
    const [initiator] = handshakes({ clock });
    initiator.offer(path);
    initiator.close(new NatpunchError('ERR_TRANSPORT', 'no path'));
    await assert.rejects(initiator.result, /no path/);
    clock.advance(DEFAULT_HANDSHAKE_TIMEOUT_MS);
    assert.deepEqual(path.sentAt, [0]);
  });

  it('answers a repeated message 2 with message 3 again at most 8 times', async () => {
    const clock = new FakeClock();
    const { a, b } = rawLink({ seed: 16 });
    const [initiator, responder] = handshakes({ clock });
    const sent = timed(a, clock);
    responder.offer(b);
    initiator.offer(sent);
    await Promise.all([initiator.result, responder.result]);
    // Message 2 ten more times, as from a responder that never hears message 3 (the completed
    // initiator answers by index alone: the repeat is not read again).
    const before = sent.sentAt.length;
    for (let i = 0; i < 10; i++) a.inject(Uint8Array.of(FrameKind.Handshake, 1, 0));
    assert.equal(sent.sentAt.length - before, 8);
  });
});
