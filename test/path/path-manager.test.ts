import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from '../support/wait.js';
import { describe, it } from 'node:test';
import { FrameKind, InnerType, encodeProbe } from '../../src/path/frame.js';
import { BUSY_FAIL_MS, FAILOVER_WAIT_MS, VALIDATION_PROBE_MS, type PathInfo, type PathManager } from '../../src/path/path-manager.js';
import type { RawPath } from '../../src/path/raw-path.js';
import { establishedSessions } from '../secure/helpers.js';
import { FakeClock } from '../transport/fake-clock.js';
import { until } from '../transport/helpers.js';
import { rawLink, type TestRawPath } from './links.js';
import { MiB, connectedManagers, sealedFrame, drive, transferBothWays, type Ends } from './sessions.js';


/** What would show that a frame reached the stream, the application or the path list. */
function observe(manager: PathManager): () => { packetsReceived: number; datagramsDropped: number; paths: number; punches: number } {
  let punches = 0;
  manager.on('punch', () => punches++);
  return () => ({ packetsReceived: manager.stream.stats.packetsReceived, datagramsDropped: manager.stream.stats.datagramsDropped, paths: manager.paths.length, punches });
}

async function bothValidated(ends: Ends, count: number): Promise<void> {
  await until(() => [ends.a, ends.b].every((m) => m.paths.length === count && m.paths.every((p) => p.validated)), `${count} validated paths on both sides`, 10_000);
}

describe('the path manager', { timeout: 120_000 }, () => {
  it('fails over to a second validated path when the first is cut mid-transfer, 2 MiB each way intact', async (t) => {
    const first = rawLink({ seed: 101, loss: 0.01, name: 'first', technique: 'udp-hole-punch' });
    const second = rawLink({ seed: 102, loss: 0.01, name: 'second', technique: 'udp-reversal' });
    const ends = await connectedManagers(t, first);
    ends.a.add(second.a);
    ends.b.add(second.b);
    await bothValidated(ends, 2);
    assert.equal(ends.a.active.remote, first.a.remote, 'a same-class path no faster does not take over');
    await transferBothWays(ends, 2 * MiB, async () => {
      await until(() => ends.b.stream.stats.bytesReceived >= MiB / 2 && ends.a.stream.stats.bytesReceived >= MiB / 2, 'half a MiB each way');
      first.link.cut();
    });
    for (const [side, events] of [['a', ends.events.a], ['b', ends.events.b]] as const) {
      const expected = side === 'a' ? second.a.remote : second.b.remote;
      assert.deepEqual(events.map(({ path, technique, remote, reason }) => ({ path, technique, remote, reason })),
        [{ path: 'direct-udp', technique: 'udp-reversal', remote: expected, reason: 'failover' }], `side ${side}`);
    }
    assert.equal(ends.a.active.remote, second.a.remote);
    assert.equal(ends.a.stream.stats.pathChanges, 1);
  });

  it('fails over within a round trip when the active raw path closes on its own (the standby must answer after the failure)', async (t) => {
    const first = rawLink({ seed: 103, name: 'first', kind: 'direct-tcp' });
    const second = rawLink({ seed: 104, name: 'second', kind: 'relay' });
    const ends = await connectedManagers(t, first);
    ends.a.add(second.a);
    ends.b.add(second.b);
    await bothValidated(ends, 2);
    first.a.kill(new Error('reset by peer'));
    assert.deepEqual(ends.events.a, [], 'not before the standby has answered a fresh probe');
    await until(() => ends.events.a.length > 0, 'the failover', 5_000);
    assert.deepEqual(ends.events.a.map(({ path, reason }) => ({ path, reason })), [{ path: 'relay', reason: 'failover' }]);
  });

  // FAILOVER_WAIT_MS: the relay answering first does not win over a direct TCP standby that
  // answers a moment later (the lab saw UDP -> relay -> TCP, a move and an upgrade, for this).
  for (const tcpAnswers of [true, false]) {
    it(tcpAnswers
      ? 'fails over to a TCP standby that answers after the relay: one move, not a move to the relay and an upgrade'
      : 'fails over to the relay once a TCP standby that stopped answering has had FAILOVER_WAIT_MS', async (t) => {
      const udp = rawLink({ seed: 121, name: 'udp', kind: 'direct-udp' });
      const tcpLink = rawLink({ seed: 122, name: 'tcp', kind: 'direct-tcp', technique: 'tcp-simultaneous-open' });
      const relay = rawLink({ seed: 123, name: 'relay', kind: 'relay', technique: 'turn-udp' });
      // a's TCP frames can be held back: its probes then get their answers only once released.
      let held: Uint8Array[] | undefined;
      const tcp: RawPath = Object.assign(Object.create(tcpLink.a) as RawPath, {
        send: (frame: Uint8Array) => (held ? held.push(Uint8Array.from(frame)) : tcpLink.a.send(frame)),
      });
      const ends = await connectedManagers(t, udp);
      ends.a.add(tcp);
      ends.a.add(relay.a);
      ends.b.add(tcpLink.b);
      ends.b.add(relay.b);
      await bothValidated(ends, 3);
      held = [];
      const failedAt = performance.now();
      udp.a.kill(new Error('gone'));
      await until(() => ends.a.paths.some((p) => p.path === 'relay' && p.live) && held!.length > 0, 'the relay answering, the TCP probe held', 5_000);
      assert.deepEqual(ends.events.a, [], 'the relay answered, but a better standby is still awaited');
      if (tcpAnswers) {
        for (const frame of held.splice(0)) tcpLink.a.send(frame);
        held = undefined;
      }
      await until(() => ends.events.a.length > 0, 'the failover', 5_000);
      assert.deepEqual(ends.events.a.map(({ path, reason }) => ({ path, reason })), [{ path: tcpAnswers ? 'direct-tcp' : 'relay', reason: 'failover' }]);
      if (!tcpAnswers) assert.ok(performance.now() - failedAt >= FAILOVER_WAIT_MS.floor, 'not before the wait');
      else assert.equal(ends.a.active.path, 'direct-tcp');
    });
  }

  it('upgrades to a better-class path added mid-transfer, 2 MiB each way intact', async (t) => {
    const tcp = rawLink({ seed: 105, loss: 0, name: 'tcp', kind: 'direct-tcp', technique: 'tcp-simultaneous-open' });
    const udp = rawLink({ seed: 106, loss: 0.01, name: 'udp', kind: 'direct-udp', technique: 'udp-hole-punch' });
    const ends = await connectedManagers(t, tcp);
    assert.equal(ends.a.active.path, 'direct-tcp');
    await transferBothWays(ends, 2 * MiB, async () => {
      await until(() => ends.b.stream.stats.bytesReceived >= MiB / 4, 'a quarter MiB over TCP');
      ends.a.add(udp.a);
      ends.b.add(udp.b);
      await until(() => ends.events.a.length > 0 && ends.events.b.length > 0, 'the upgrade on both sides');
    });
    for (const events of [ends.events.a, ends.events.b]) {
      assert.deepEqual(events.map(({ path, technique, reason }) => ({ path, technique, reason })), [{ path: 'direct-udp', technique: 'udp-hole-punch', reason: 'upgrade' }]);
      assert.equal(typeof events[0]!.rttMs, 'number');
    }
    assert.ok(udp.link.stats.aToB.delivered > 100, 'the stream moved to UDP');
  });

  it('validates an added path from both sides: each answers the other\'s padded challenge at full size', async (t) => {
    const first = rawLink({ seed: 107, name: 'first' });
    const second = rawLink({ seed: 108, name: 'second', record: true });
    const ends = await connectedManagers(t, first);
    ends.a.add(second.a);
    ends.b.add(second.b);
    await bothValidated(ends, 2);
    for (const frames of [second.a.frames, second.b.frames]) {
      assert.ok(frames.length >= 2, 'a challenge and a response each way');
      for (const frame of frames.slice(0, 2)) assert.equal(frame.length, second.a.maxPayload, 'padded to the full datagram');
    }
  });

  it('retries a lost validation probe after VALIDATION_PROBE_MS, and measures RTT from the probe answered', async (t) => {
    const clock = new FakeClock();
    const first = rawLink({ seed: 109, name: 'first' });
    const second = rawLink({ seed: 110, name: 'second' });
    const ends = await connectedManagers(t, first, { a: { clock }, b: { clock } });
    // a's first challenge on the new path is lost; b's goes through.
    let dropped = 0;
    const lossy: RawPath = Object.assign(Object.create(second.a) as RawPath, {
      send: (frame: Uint8Array) => { if (dropped++ > 0) second.a.send(frame); },
    });
    ends.b.add(second.b);
    ends.a.add(lossy);
    const validatedAt = await drive(clock, () => ends.a.paths.every((p) => p.validated), { stepMs: 10, limitMs: 10_000 });
    const rtt = ends.a.paths[1]!.rttMs!;
    assert.ok(rtt <= 20, `rtt ${rtt} ms: the answered probe went out at most 20 fake ms before its answer`);
    assert.ok(validatedAt <= 2 * VALIDATION_PROBE_MS, `validated after ${validatedAt} fake ms`);
  });

  it('drops and counts forged frames on a path: random bytes, another session\'s, tampered, replayed', async (t) => {
    const link = rawLink({ seed: 111, name: 'only', record: true });
    const ends = await connectedManagers(t, link);
    const seen = observe(ends.a);
    const before = seen();
    const forged: Uint8Array[] = [];
    for (let i = 0; i < 50; i++) forged.push(randomBytes(1 + (i * 37) % 1300));
    for (let i = 0; i < 20; i++) forged.push(Uint8Array.of(FrameKind.Sealed, ...randomBytes(i * 10)));
    const [stranger] = establishedSessions();
    for (const inner of [encodeProbe(InnerType.PathChallenge, randomBytes(8)), Uint8Array.of(InnerType.Punch, 1), Uint8Array.of(InnerType.Stream, 1, 0, 0)]) {
      forged.push(sealedFrame(stranger, inner));
    }
    const genuine = sealedFrame(ends.sessions.b, encodeProbe(InnerType.PathChallenge, randomBytes(8)));
    for (let at = 0; at < genuine.length; at++) {
      const tampered = genuine.slice();
      tampered[at] = tampered[at]! ^ 0x80;
      forged.push(tampered);
    }
    const replayed = link.b.frames.filter((frame) => frame[0] === FrameKind.Sealed);
    const sentByA = link.a.frames.length;
    for (const frame of [...forged, ...replayed]) link.a.inject(frame);
    assert.deepEqual(seen(), before, 'nothing reached the stream, the application or the path list');
    assert.equal(link.a.frames.length, sentByA, 'no forged challenge was answered');
    const countable = forged.filter((frame) => frame[0] !== FrameKind.Handshake).length + replayed.length;
    assert.equal(ends.a.dropped, countable, 'every frame that is not a handshake repeat counted as dropped');
    // The genuine frame still opens: no forgery moved the replay window.
    link.a.inject(genuine);
    assert.equal(link.a.frames.length, sentByA + 1, 'the genuine challenge was answered');
    assert.equal(link.a.frames.at(-1)!.length, genuine.length, 'padded as the challenge was');
  });

  it('reports a PUNCH control message to the other side', async (t) => {
    const ends = await connectedManagers(t, rawLink({ seed: 112 }));
    const got = once(ends.b, 'punch');
    ends.a.sendControl(new TextEncoder().encode('{"again":true}'));
    const [body] = await got as [Uint8Array];
    assert.equal(new TextDecoder().decode(body), '{"again":true}');
  });

  /** Records 'stale', 'live' and 'path' events of both sides, in order. */
  function recordLiveness(ends: Ends): string[] {
    const order: string[] = [];
    for (const [side, manager] of [['a', ends.a], ['b', ends.b]] as const) {
      manager.on('stale', () => order.push(`${side} stale`));
      manager.on('live', () => order.push(`${side} live`));
      manager.on('path', (info: PathInfo) => order.push(`${side} path ${info.path} ${info.reason}`));
    }
    return order;
  }

  it('reports \'stale\' when its only path is cut mid-transfer and \'live\' when it comes back, the transfer intact', async (t) => {
    const only = rawLink({ seed: 113, name: 'only' });
    const ends = await connectedManagers(t, only);
    const order = recordLiveness(ends);
    await transferBothWays(ends, 2 * MiB, async () => {
      await until(() => ends.b.stream.stats.bytesReceived >= MiB / 2 && ends.a.stream.stats.bytesReceived >= MiB / 2, 'half a MiB each way');
      only.link.impair({ loss: 1 });
      await until(() => order.includes('a stale') && order.includes('b stale'), 'both sides stale', BUSY_FAIL_MS + 2_000);
      only.link.impair({ loss: 0 });
      await until(() => order.includes('a live') && order.includes('b live'), 'both sides live again', 4_000);
    });
    assert.deepEqual(order.filter((e) => e.startsWith('a')), ['a stale', 'a live']);
    assert.deepEqual(order.filter((e) => e.startsWith('b')), ['b stale', 'b live']);
  });

  it('reports \'stale\' when both of two paths are cut, without moving the stream back and forth between them', async (t) => {
    const first = rawLink({ seed: 119, name: 'first' });
    const second = rawLink({ seed: 120, name: 'second', kind: 'relay' });
    const ends = await connectedManagers(t, first);
    ends.a.add(second.a);
    ends.b.add(second.b);
    await bothValidated(ends, 2);
    const order = recordLiveness(ends);
    await transferBothWays(ends, MiB, async () => {
      await until(() => ends.b.stream.stats.bytesReceived >= MiB / 4 && ends.a.stream.stats.bytesReceived >= MiB / 4, 'a quarter MiB each way');
      first.link.impair({ loss: 1 });
      second.link.impair({ loss: 1 });
      await until(() => order.includes('a stale') && order.includes('b stale'), 'both sides stale', 4 * BUSY_FAIL_MS);
      first.link.impair({ loss: 0 });
      second.link.impair({ loss: 0 });
      await until(() => order.includes('a live') && order.includes('b live'), 'both sides live again', 4_000);
    });
    // At most one try of the standby path before giving up.
    assert.ok(order.filter((e) => e.startsWith('a path')).length <= 2, order.join(', '));
  });

  it('ignores frames on paths once closed, and releases every raw path', async (t) => {
    const first = rawLink({ seed: 115, name: 'first' });
    const second = rawLink({ seed: 116, name: 'second' });
    const ends = await connectedManagers(t, first);
    ends.a.add(second.a);
    const seen = observe(ends.a);
    const before = seen();
    ends.a.close();
    assert.equal(first.a.open, false);
    assert.equal(second.a.open, false);
    first.a.inject(sealedFrame(ends.sessions.b, Uint8Array.of(InnerType.Punch)));
    assert.deepEqual(seen(), before);
    ends.a.add(rawLink({ seed: 117 }).a);
    assert.equal(ends.a.paths.length, 2, 'no path added after close');
  });

  it('holds at most MAX_PATHS paths, never evicting the active one', async (t) => {
    const first = rawLink({ seed: 118, name: 'first' });
    const ends = await connectedManagers(t, first);
    const extra: TestRawPath[] = [];
    for (let i = 0; i < 12; i++) {
      const path = rawLink({ seed: 200 + i, name: `extra${i}` }).a;
      extra.push(path);
      ends.a.add(path);
    }
    assert.equal(ends.a.paths.length, 8);
    assert.equal(ends.a.active.remote, first.a.remote);
    assert.equal(first.a.open, true);
    assert.equal(extra.filter((p) => !p.open).length, 5, 'the five oldest extra paths were closed');
  });
});
