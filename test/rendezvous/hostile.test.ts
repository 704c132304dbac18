import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { once } from '../support/wait.js';
import { generateIdentity } from '../../src/identity/index.js';
import {
  type PunchInstruction, type TrickledCandidates, DOMAIN, RendezvousError, RendezvousVerifyError, peekSigned, signObject,
} from '../../src/rendezvous/index.js';
import { type ForgeMode, HostileRendezvousServer } from './hostile-server.js';
import { type Peer, Resources, candidate, startPeer, token, udpSocket, until } from './helpers.js';

const resources = new Resources();
afterEach(() => resources.close());

/** A hostile server whose forged candidate is a real UDP socket counting what reaches it. */
async function hostile(options: { mode?: ForgeMode; forge?: 'intent' | 'accept' | 'hold' | 'none'; dropTrickles?: boolean } = {}) {
  const victim = await udpSocket(resources);
  let packets = 0;
  victim.on('message', () => packets++);
  const server = resources.add(
    await HostileRendezvousServer.listen({ forgedCandidates: [`127.0.0.1:${victim.address().port}`], ...options }),
    (s) => s.close(),
  );
  return { server, packetsToVictim: () => packets };
}

/** Records what a peer was told to punch, and what it rejected. */
function watch(peer: Peer) {
  const punches: PunchInstruction[] = [];
  const rejected: RendezvousVerifyError[] = [];
  peer.client.on('punch', (p) => punches.push(p));
  peer.client.on('rejected', (e) => rejected.push(e));
  return { punches, rejected };
}

for (const mode of ['resign', 'tamper', 'unsigned'] as const) {
  test(`an initiator rejects a punch whose accept was forged (${mode}) and gets no instruction`, async () => {
    const { server, packetsToVictim } = await hostile({ mode, forge: 'accept' });
    const a = await startPeer(resources, server.url);
    const b = await startPeer(resources, server.url);
    const seenByA = watch(a);
    const error = await a.client.connect(b.identity.peerId).then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof RendezvousVerifyError, String(error));
    assert.equal(error.code, 'ERR_RENDEZVOUS_VERIFY');
    assert.equal(error.reason, 'bad-signature');
    assert.equal(seenByA.rejected.length, 1);
    assert.equal(seenByA.punches.length, 0);
    assert.equal(server.forgeries, 1);
    assert.equal(packetsToVictim(), 0);
  });

  test(`a target refuses an intent whose candidates were forged (${mode}) and never punches`, async () => {
    const { server } = await hostile({ mode, forge: 'intent' });
    const a = await startPeer(resources, server.url);
    const b = await startPeer(resources, server.url);
    const seenByB = watch(b);
    void a.client.connect(b.identity.peerId, { timeoutMs: 60_000 }).catch(() => undefined);
    await server.waitFor((r) => r.some((x) => x.message.type === 'refuse'));
    const refuse = server.received.find((x) => x.message.type === 'refuse')!;
    assert.equal(refuse.peerId, b.identity.peerId);
    assert.match((refuse.message as { reason: string }).reason, /^bad-signature: /);
    assert.equal(seenByB.rejected[0]?.reason, 'bad-signature');
    assert.equal(seenByB.punches.length, 0);
  });
}

test('an initiator alone rejects an accept the server fabricated in its target\'s name', async () => {
  const { server, packetsToVictim } = await hostile({ mode: 'resign' });
  const a = await startPeer(resources, server.url);
  const absent = generateIdentity().peerId;
  await assert.rejects(a.client.connect(absent), (e: unknown) => e instanceof RendezvousVerifyError && e.reason === 'bad-signature');
  assert.equal(packetsToVictim(), 0);
});

test('a target refuses an intent re-signed by the server in a real peer\'s name', async () => {
  const { server } = await hostile();
  const a = await startPeer(resources, server.url);
  const b = await startPeer(resources, server.url);
  const seenByB = watch(b);
  const session = server.forgeIncoming(b.identity.peerId, { claimFrom: a.identity.peerId, mode: 'resign' });
  await server.waitFor((r) => r.some((x) => x.message.type === 'refuse'));
  assert.deepEqual(server.received.filter((x) => x.message.type === 'refuse').map((x) => (x.message as { session: string }).session), [session]);
  assert.equal(seenByB.punches.length, 0);
});

test('a replayed intent is refused as replayed, though its signature is genuine', async () => {
  const { server } = await hostile({ forge: 'accept' });
  const a = await startPeer(resources, server.url);
  const b = await startPeer(resources, server.url);
  const seenByB = watch(b);
  const punched = once(b.client, 'punch');
  await a.client.connect(b.identity.peerId).catch(() => undefined);
  await punched; // b got the genuine punch for the genuine intent
  server.replayIncoming(b.identity.peerId);
  await server.waitFor((r) => r.some((x) => x.message.type === 'refuse'));
  const refuse = server.received.find((x) => x.message.type === 'refuse')!.message as { reason: string };
  assert.match(refuse.reason, /^replayed: /);
  assert.equal(seenByB.rejected.at(-1)?.reason, 'replayed');
  assert.equal(seenByB.punches.length, 1);
});

test('an expired intent is refused by the target even when genuinely signed; small clock skew is tolerated', async () => {
  const { server } = await hostile();
  // The target's clock runs ahead of the initiator's: by 20 s (refused), then by 12 s (tolerated).
  let skew = 20_000;
  const b = await startPeer(resources, server.url, { clockToleranceMs: 10_000, now: () => Date.now() + skew });
  const seenByB = watch(b);
  const someone = generateIdentity();
  const deliver = () => {
    const session = token();
    server.deliver(b.identity.peerId, { type: 'incoming', intent: signObject(someone, DOMAIN.intent, {
      from: someone.peerId, to: b.identity.peerId, nonce: token(), expires: Date.now() + 5_000, candidates: [candidate('127.0.0.1:9')], session,
    }) });
    return session;
  };
  deliver();
  await server.waitFor((r) => r.some((x) => x.message.type === 'refuse'));
  assert.equal(seenByB.rejected[0]?.reason, 'expired', '5 s left, but 20 s of skew is beyond a 10 s tolerance');
  skew = 12_000;
  const session = deliver();
  await server.waitFor((r) => r.some((x) => x.message.type === 'accept'));
  assert.equal((server.received.find((x) => x.message.type === 'accept')!.message.type), 'accept', `session ${session} accepted within tolerance`);
  assert.equal(seenByB.rejected.length, 1);
});

test('an intent addressed to another peer is refused', async () => {
  const { server } = await hostile();
  const b = await startPeer(resources, server.url);
  const seenByB = watch(b);
  const someone = generateIdentity();
  const intent = signObject(someone, DOMAIN.intent, {
    from: someone.peerId, to: generateIdentity().peerId, nonce: token(), expires: Date.now() + 10_000, candidates: [candidate('127.0.0.1:9')], session: token(),
  });
  server.deliver(b.identity.peerId, { type: 'incoming', intent });
  await server.waitFor((r) => r.some((x) => x.message.type === 'refuse'));
  assert.equal(seenByB.rejected[0]?.reason, 'mismatch');
});

test('a punch for a session the peer never initiated or accepted is dropped', async () => {
  const { server, packetsToVictim } = await hostile();
  const b = await startPeer(resources, server.url);
  const seenByB = watch(b);
  const rejected = once(b.client, 'rejected') as Promise<[RendezvousVerifyError]>;
  server.forgePunch(b.identity.peerId, { role: 'controlled' });
  const [error] = await rejected;
  assert.equal(error.reason, 'mismatch');
  assert.equal(seenByB.punches.length, 0);
  assert.equal(packetsToVictim(), 0);
});

test('an initiator checks every part of a punch: role, peer, the intent it signed, the accept\'s session', async () => {
  const { server } = await hostile({ forge: 'hold' });
  const a = await startPeer(resources, server.url);
  const b = await startPeer(resources, server.url);
  type Signed = { body: string; sig: string };
  /** Starts a connect and returns it with the genuine intent and b's genuine accept. */
  const genuine = async () => {
    const accepts = server.received.filter((x) => x.message.type === 'accept').length;
    const result = a.client.connect(b.identity.peerId).then((p) => p, (e: unknown) => e);
    await server.waitFor((r) => r.filter((x) => x.message.type === 'accept').length > accepts);
    const intent = (server.received.filter((x) => x.message.type === 'connect').at(-1)!.message as unknown as { intent: Signed }).intent;
    const accept = (server.received.filter((x) => x.message.type === 'accept').at(-1)!.message as unknown as { accept: Signed }).accept;
    const session = (peekSigned(intent) as { session: string }).session;
    return { result, intent, accept, session };
  };
  const punch = (fields: Record<string, unknown>) => ({
    type: 'punch', role: 'controlling', peer: b.identity.peerId, key: Buffer.alloc(32).toString('base64'), startInMs: 0, ...fields,
  });
  const previous = await genuine();
  server.deliver(a.identity.peerId, punch({ session: previous.session, intent: previous.intent, accept: previous.accept }));
  assert.equal(((await previous.result) as PunchInstruction).session, previous.session, 'the genuine punch is accepted');

  const variants: [string, (g: Awaited<ReturnType<typeof genuine>>) => Record<string, unknown>][] = [
    ['role controlled', (g) => ({ session: g.session, intent: g.intent, accept: g.accept, role: 'controlled' })],
    ['another peer', (g) => ({ session: g.session, intent: g.intent, accept: g.accept, peer: a.identity.peerId })],
    ['an older intent', (g) => ({ session: g.session, intent: previous.intent, accept: g.accept })],
    ['an accept of another session', (g) => ({ session: g.session, intent: g.intent, accept: previous.accept })],
  ];
  for (const [what, craft] of variants) {
    const g = await genuine();
    server.deliver(a.identity.peerId, punch(craft(g)));
    const error = await g.result;
    assert.ok(error instanceof RendezvousVerifyError, `${what}: ${String(error)}`);
    assert.equal(error.reason, 'mismatch', what);
  }
});

test('a target holds at most maxPendingIncoming intents, counting those its policy is still deciding', async () => {
  const { server } = await hostile();
  const b = await startPeer(resources, server.url, { maxPendingIncoming: 2, accept: () => new Promise<boolean>(() => undefined) });
  const seenByB = watch(b);
  for (let i = 0; i < 3; i++) {
    const someone = generateIdentity();
    server.deliver(b.identity.peerId, { type: 'incoming', intent: signObject(someone, DOMAIN.intent, {
      from: someone.peerId, to: b.identity.peerId, nonce: token(), expires: Date.now() + 10_000, candidates: [candidate('127.0.0.1:9')], session: token(),
    }) });
  }
  await server.waitFor((r) => r.some((x) => x.message.type === 'refuse'));
  assert.deepEqual(seenByB.rejected.map((e) => e.reason), ['busy']);
});

/** A peer `a` with a genuine punched session with `b`, through a server that passes things on honestly until told otherwise. */
async function punchedThroughHostile(mode: ForgeMode = 'resign', dropTrickles = false) {
  const { server, packetsToVictim } = await hostile({ mode, forge: 'none', dropTrickles });
  const a = await startPeer(resources, server.url);
  const b = await startPeer(resources, server.url);
  const punchedB = once(b.client, 'punch');
  const instruction = await a.client.connect(b.identity.peerId);
  await punchedB;
  const heard: TrickledCandidates[] = [];
  a.client.onCandidates(instruction.session, (batch) => heard.push(batch));
  return { server, packetsToVictim, a, b, session: instruction.session, heard, seenByA: watch(a) };
}

for (const mode of ['resign', 'tamper', 'unsigned'] as const) {
  test(`a trickled candidate forged by the server (${mode}) is refused by the peer: no event, nothing to send to`, async () => {
    const { server, a, session, heard, seenByA, packetsToVictim } = await punchedThroughHostile(mode);
    const events: TrickledCandidates[] = [];
    a.client.on('candidates', (batch) => events.push(batch));
    const rejected = once(a.client, 'rejected') as Promise<[RendezvousVerifyError]>;
    server.forgeCandidates(a.identity.peerId, session, { mode });
    const [error] = await rejected;
    assert.equal(error.code, 'ERR_RENDEZVOUS_VERIFY');
    assert.equal(error.reason, 'bad-signature');
    assert.match(error.message, /^signed trickle: the signature does not verify with the key of /);
    assert.deepEqual([events.length, heard.length], [0, 0]);
    assert.equal(seenByA.rejected.length, 1);
    assert.equal(packetsToVictim(), 0);
  });
}

test('a genuine trickle passes a hostile server; replayed, it is refused as replayed', async () => {
  const { server, a, b, session, heard } = await punchedThroughHostile();
  const mapped = { type: 'mapped' as const, transport: 'udp' as const, address: { family: 4 as const, address: '198.51.100.20', port: 4000 } };
  await b.client.trickle(session, [mapped]);
  await until(() => heard.length === 1, 'a hears b\'s genuine trickle');
  assert.equal(heard[0]!.peer, b.identity.peerId);
  const rejected = once(a.client, 'rejected') as Promise<[RendezvousVerifyError]>;
  server.replayCandidates(a.identity.peerId);
  assert.equal((await rejected)[0].reason, 'replayed');
  assert.equal(heard.length, 1);
});

test('candidates for a session the peer never punched are refused, even signed by a real peer', async () => {
  const { server, a, b } = await punchedThroughHostile();
  const session = token();
  const rejected = once(a.client, 'rejected') as Promise<[RendezvousVerifyError]>;
  // b's genuine key, but a session a never had with b.
  server.deliver(a.identity.peerId, { type: 'candidates', session, signed: signObject(b.identity, DOMAIN.trickle, { session, seq: 1, candidates: [] }) });
  const [error] = await rejected;
  assert.equal(error.reason, 'mismatch');
  assert.match(error.message, /^candidates\.session: .* is not a session punched within the last 30000 ms$/);
});

test('a trickle the server swallows fails with reason timeout, not a hang', async () => {
  const { b, session } = await punchedThroughHostile('resign', true);
  const mapped = { type: 'mapped' as const, transport: 'udp' as const, address: { family: 4 as const, address: '198.51.100.20', port: 4000 } };
  const started = performance.now();
  await assert.rejects(b.client.trickle(session, [mapped], { timeoutMs: 200 }), (e: unknown) => {
    assert.ok(e instanceof RendezvousError, String(e));
    assert.equal(e.reason, 'timeout');
    assert.equal(e.message, 'rendezvous trickle: no answer from the server within 200 ms');
    return true;
  });
  assert.ok(performance.now() - started < 2_000);
});
