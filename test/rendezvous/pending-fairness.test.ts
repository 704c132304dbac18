/**
 * Issue 11 finding 5: a few registered initiators that send intents to a peer that never
 * answers them must not keep every other initiator away from that peer. Reproduced on loopback
 * with the default per-target slots (maxPendingIntents 8) and 8 attackers.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import type { Identity } from '../../src/identity/index.js';
import { type RendezvousLimits, DOMAIN, RendezvousError, bodyHash, peekSigned, signObject } from '../../src/rendezvous/index.js';
import { type RawClient, Resources, candidate, registerRaw, startPeer, startServers, token, until } from './helpers.js';

const resources = new Resources();
afterEach(() => resources.close());

function intent(from: Identity, to: string, lifetimeMs = 60_000): { type: 'connect'; intent: { body: string; sig: string } } {
  return {
    type: 'connect',
    intent: signObject(from, DOMAIN.intent, { from: from.peerId, to, nonce: token(), expires: Date.now() + lifetimeMs, candidates: [], session: token() }),
  };
}

/** A target that never answers anyone but `friend`, whose intents it accepts at once. */
function acceptOnly(target: { raw: RawClient; identity: Identity }, friend: string): { forwarded: () => number; stop: () => void } {
  let forwarded = 0;
  let stopped = false;
  void (async () => {
    while (!stopped) {
      const message = await target.raw.next().catch(() => undefined);
      if (!message || stopped) return;
      if (message.type !== 'incoming') continue;
      forwarded++;
      const signed = message['intent'] as { body: string; sig: string };
      const body = peekSigned(signed) as { from: string; session: string };
      if (body.from !== friend) continue;
      target.raw.send({ type: 'accept', accept: signObject(target.identity, DOMAIN.accept, {
        session: body.session, intentHash: bodyHash(signed), candidates: [candidate('127.0.0.1:9')], nonce: token(),
      }) });
    }
  })();
  return { forwarded: () => forwarded, stop: () => { stopped = true; } };
}

test('8 attackers hammering intents at a peer do not keep a legitimate initiator out', async () => {
  const { url } = await startServers(resources);
  const target = await registerRaw(resources, url);
  const attackers = await Promise.all(Array.from({ length: 8 }, () => registerRaw(resources, url)));
  const legit = await startPeer(resources, url);
  const answering = acceptOnly(target, legit.identity.peerId);
  // Every attacker sends one intent, then keeps sending (the measured attack: one every 5 s,
  // here every 100 ms). The target never answers them.
  for (const a of attackers) a.raw.send(intent(a.identity, target.identity.peerId));
  await until(() => answering.forwarded() >= 8, 'the attackers\' intents fill the target\'s pending slots');
  const hammer = setInterval(() => {
    for (const a of attackers) if (a.raw.ws.readyState === a.raw.ws.OPEN) a.raw.send(intent(a.identity, target.identity.peerId));
  }, 100);
  try {
    // Three attempts: the pair's own burst (pairIntentBurst 4) is for the legitimate peer too.
    for (let attempt = 0; attempt < 3; attempt++) {
      const instruction = await legit.client.connect(target.identity.peerId, { timeoutMs: 5000 });
      assert.equal(instruction.peer, target.identity.peerId, `attempt ${attempt}: the legitimate initiator got through`);
    }
  } finally {
    clearInterval(hammer);
    answering.stop();
  }
});

test('when a target\'s pending slots are full, a new initiator evicts the oldest session of the one holding most', async () => {
  const { url, server } = await startServers(resources, { limits: { maxPendingIntents: 2 } });
  const target = await registerRaw(resources, url);
  const [a, b, c] = await Promise.all([0, 1, 2].map(() => registerRaw(resources, url)));
  a!.raw.send(intent(a!.identity, target.identity.peerId));
  assert.equal((await target.raw.next()).type, 'incoming');
  // A second pending session of one pair is refused: one pair holds at most maxPendingPerPair (1).
  const again = await a!.raw.ask(intent(a!.identity, target.identity.peerId));
  assert.equal(again['code'], 'too-many-pending');
  assert.match(String(again['message']), /already has 1 session\(s\) pending with/);
  b!.raw.send(intent(b!.identity, target.identity.peerId));
  assert.equal((await target.raw.next()).type, 'incoming');
  await until(() => server.stats.sessions === 2, 'two sessions pending');
  // c is new to the target: a's session (the oldest of those holding most) makes room.
  c!.raw.send(intent(c!.identity, target.identity.peerId));
  const incoming = await target.raw.next();
  assert.equal((peekSigned(incoming['intent'] as { body: string; sig: string }) as { from: string }).from, c!.identity.peerId);
  const evicted = await a!.raw.next();
  assert.equal(evicted['code'], 'too-many-pending');
  assert.match(String(evicted['message']), /newer initiator/);
  assert.equal(server.stats.sessions, 2);
});

test('a pending session to a target that never answers ends after pendingTimeoutMs, not at the intent\'s expiry', async () => {
  const { url, server } = await startServers(resources, { limits: { pendingTimeoutMs: 300 } as Partial<RendezvousLimits> });
  const target = await registerRaw(resources, url);
  const a = await registerRaw(resources, url);
  const started = performance.now();
  a.raw.send(intent(a.identity, target.identity.peerId, 60_000));
  const reply = await a.raw.next();
  assert.equal(reply['code'], 'timeout');
  assert.ok(performance.now() - started < 10_000, 'ended long before the intent expires');
  assert.equal(server.stats.sessions, 0);
});

test('one initiator\'s intents are rate-limited, across targets and per target', async () => {
  const limits = { intentsPerSecond: 0.001, intentBurst: 3, pairIntentsPerMinute: 0.001, pairIntentBurst: 2 } as Partial<RendezvousLimits>;
  const { url } = await startServers(resources, { limits });
  const a = await registerRaw(resources, url);
  const targets = await Promise.all([0, 1, 2, 3].map(() => registerRaw(resources, url)));
  // Per pair: two intents to one target (each refused by the target at once), the third limited.
  const first = targets[0]!;
  const codes: unknown[] = [];
  for (let i = 0; i < 3; i++) {
    a.raw.send(intent(a.identity, first.identity.peerId));
    const reply = await Promise.race([a.raw.next(), first.raw.next()]);
    if (reply.type === 'incoming') {
      const session = (peekSigned(reply['intent'] as { body: string; sig: string }) as { session: string }).session;
      first.raw.send({ type: 'refuse', session, reason: 'no' });
      codes.push((await a.raw.next())['code']);
    } else {
      codes.push(reply['code']);
    }
  }
  assert.deepEqual(codes, ['refused', 'refused', 'rate-limited']);
  // Per initiator: the burst of 3 is spent by now (the limited one took none).
  const other = await a.raw.ask(intent(a.identity, targets[1]!.identity.peerId));
  assert.equal(other['code'], 'rate-limited');
  assert.match(String(other['message']), /intents per second/);
});

test('a legitimate client sees too-many-pending as a RendezvousError with the target named', async () => {
  const { url } = await startServers(resources, { limits: { maxPendingIntents: 1 } });
  const target = await registerRaw(resources, url);
  const own = await startPeer(resources, url);
  // The target's one slot is taken by its own outgoing session: nothing to evict.
  const other = await registerRaw(resources, url);
  target.raw.send(intent(target.identity, other.identity.peerId));
  assert.equal((await other.raw.next()).type, 'incoming');
  await assert.rejects(own.client.connect(target.identity.peerId, { timeoutMs: 5000 }), (error: unknown) => {
    assert.ok(error instanceof RendezvousError);
    assert.equal(error.reason, 'too-many-pending');
    assert.match(error.message, new RegExp(target.identity.peerId));
    return true;
  });
});
