/**
 * Two ends of a natpunch connection for the path tests: the Noise handshake run as datagrams
 * (PathHandshake) over a raw path, then a PathManager on each side, and a transfer both ways.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { generateIdentity, type Identity } from '../../src/identity/identity.js';
import { PathHandshake, type HandshakeResult } from '../../src/path/handshake.js';
import { PathManager, type PathInfo, type PathManagerOptions } from '../../src/path/path-manager.js';
import type { RawPath } from '../../src/path/raw-path.js';
import { SealedPath } from '../../src/path/sealed-path.js';
import type { SecureSession } from '../../src/secure/index.js';
import type { Clock } from '../../src/transport/clock.js';
import { pseudoRandomBytes, readAll, sha256, writeAll } from '../transport/helpers.js';
import type { FakeClock } from '../transport/fake-clock.js';

export const alice: Identity = generateIdentity();
export const bob: Identity = generateIdentity();
export const CONTEXT = new TextEncoder().encode('path-test-session');

/** Alice (initiator, dialling bob) and bob (responder), not yet offered a path. */
export function handshakes(options: { clock?: Clock; timeoutMs?: number; expectedPeerId?: string; signal?: AbortSignal } = {}): [PathHandshake, PathHandshake] {
  const { expectedPeerId = bob.peerId, ...common } = options;
  return [
    new PathHandshake({ identity: alice, initiator: true, expectedPeerId, context: CONTEXT, ...common }),
    new PathHandshake({ identity: bob, initiator: false, context: CONTEXT, ...common }),
  ];
}

/** Runs the handshake over `a` (alice's end) and `b` (bob's), on the real clock. */
export async function handshakeOver(a: RawPath, b: RawPath): Promise<[HandshakeResult, HandshakeResult]> {
  const [initiator, responder] = handshakes({ timeoutMs: 10_000 });
  responder.offer(b);
  initiator.offer(a);
  return Promise.all([initiator.result, responder.result]);
}

/**
 * Lets the link deliver (a turn of the event loop) and moves the fake clock `stepMs`, until
 * `done()` or `limitMs` of fake time; returns the fake time it took.
 */
export async function drive(clock: FakeClock, done: () => boolean, options: { stepMs?: number; limitMs: number }): Promise<number> {
  const started = clock.now();
  while (!done()) {
    if (clock.now() - started > options.limitMs) throw new Error(`not done after ${options.limitMs} ms of fake time`);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    clock.advance(options.stepMs ?? 10);
  }
  return clock.now() - started;
}

/** Whether a promise has settled, for drive(). */
export function settled(promise: Promise<unknown>): () => boolean {
  let done = false;
  promise.then(() => { done = true; }, () => { done = true; });
  return () => done;
}

export interface Ends {
  a: PathManager;
  /** The sessions under the managers, to seal frames of one's own. */
  sessions: { a: SecureSession; b: SecureSession };
  b: PathManager;
  /** Every 'path' event, per side. */
  events: { a: PathInfo[]; b: PathInfo[] };
}

/**
 * Handshakes over `first`, then builds a PathManager on each side over it; everything is closed
 * when the test ends.
 */
export async function connectedManagers(
  t: TestContext,
  first: { a: RawPath; b: RawPath },
  options: { a?: Partial<PathManagerOptions>; b?: Partial<PathManagerOptions> } = {},
): Promise<Ends> {
  const [resultA, resultB] = await handshakeOver(first.a, first.b);
  const stream = { idleTimeout: 60_000 };
  const a = new PathManager({ session: resultA.session, first: resultA.path, firstRttMs: resultA.rttMs, stream, ...options.a });
  const b = new PathManager({ session: resultB.session, first: resultB.path, firstRttMs: resultB.rttMs, stream, ...options.b });
  const events: Ends['events'] = { a: [], b: [] };
  a.on('path', (info: PathInfo) => events.a.push(info));
  b.on('path', (info: PathInfo) => events.b.push(info));
  t.after(() => {
    a.stream.destroy();
    b.stream.destroy();
    a.close();
    b.close();
  });
  return { a, b, events, sessions: { a: resultA.session, b: resultB.session } };
}

export const MiB = 1024 * 1024;

/**
 * Sends `size` pseudo-random bytes each way; `during` runs once both have started. Resolves
 * after both arrived intact.
 */
export async function transferBothWays(ends: Ends, size: number, during?: () => Promise<void>): Promise<void> {
  const fromA = pseudoRandomBytes(size, 1);
  const fromB = pseudoRandomBytes(size, 2);
  const atB = readAll(ends.b.stream);
  const atA = readAll(ends.a.stream);
  const sending = Promise.all([writeAll(ends.a.stream, fromA), writeAll(ends.b.stream, fromB)]);
  await during?.();
  const [receivedAtB, receivedAtA] = await Promise.all([atB, atA, sending]);
  assert.equal(receivedAtB.length, size, 'bytes at b');
  assert.equal(sha256(receivedAtB), sha256(fromA), 'a to b intact');
  assert.equal(receivedAtA.length, size, 'bytes at a');
  assert.equal(sha256(receivedAtA), sha256(fromB), 'b to a intact');
}

/** A SEALED frame of `session` carrying `inner`, never sent: what the peer's manager would get (or an attacker held back). */
export function sealedFrame(session: SecureSession, inner: Uint8Array): Uint8Array {
  const frames: Uint8Array[] = [];
  const capture: RawPath = {
    kind: 'direct-udp', remote: 'capture:1', technique: 'test', open: true, maxPayload: 1195,
    send: (frame) => { frames.push(frame); }, onDatagram: () => undefined, onClose: () => undefined, close: () => undefined,
  };
  new SealedPath(capture, session.datagram).send(inner);
  return frames[0]!;
}
