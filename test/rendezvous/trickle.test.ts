/**
 * Trickled candidates end to end (RFC 8838): a peer of a punched session sends candidates found
 * late, signed; the server forwards them to the other peer only, within the session's allowance
 * and window; the other peer verifies them and hands them to its listeners.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { once } from '../support/wait.js';
import { candidatePriority } from '../../src/punch/candidate.js';
import {
  type PunchInstruction, type TrickledCandidates, DOMAIN, RendezvousError, type RendezvousVerifyError, bodyHash, peekSigned, signObject,
} from '../../src/rendezvous/index.js';
import { type Peer, RawClient, Resources, candidate, rawPunched, registerRaw, startPeer, startServers, token, until } from './helpers.js';

const resources = new Resources();
afterEach(() => resources.close());

const mapped = { type: 'mapped' as const, transport: 'udp' as const, address: { family: 4 as const, address: '198.51.100.20', port: 4000 } };
const relay = { type: 'relay' as const, transport: 'tcp' as const, address: { family: 4 as const, address: '203.0.113.1', port: 3478 } };

/** Two peers with a punched session between them. */
async function punched(limits = {}) {
  const servers = await startServers(resources, { limits });
  const a = await startPeer(resources, servers.url);
  const b = await startPeer(resources, servers.url);
  const incoming = once(b.client, 'punch') as Promise<[PunchInstruction]>;
  const initiator = await a.client.connect(b.identity.peerId);
  const [target] = await incoming;
  return { ...servers, a, b, initiator, target, session: initiator.session };
}

function collect(peer: Peer) {
  const batches: TrickledCandidates[] = [];
  peer.client.on('candidates', (batch) => batches.push(batch));
  return batches;
}

test('a trickled candidate reaches the other peer typed, prioritised after the offer, and signed by the sender', async () => {
  const { a, b, session, target, server } = await punched();
  const heardByA = collect(a);
  const perSession: TrickledCandidates[] = [];
  a.client.onCandidates(session, (batch) => perSession.push(batch));
  const arrived = once(a.client, 'candidates');
  await b.client.trickle(session, [mapped, relay]);
  await arrived;
  assert.deepEqual(heardByA, [{
    session, peer: b.identity.peerId, end: false, candidates: [
      { ...mapped, priority: candidatePriority('mapped', 65_535) },
      { ...relay, priority: candidatePriority('relay', 32_767) },
    ],
  }]);
  assert.deepEqual(perSession, heardByA);
  // A second host candidate continues the offer's local preferences: priorities stay unique.
  const host = { type: 'host' as const, transport: 'udp' as const, address: { family: 4 as const, address: '10.9.9.9', port: 4 } };
  const second = once(a.client, 'candidates');
  await b.client.trickle(session, [host], { end: true });
  await second;
  assert.equal(heardByA[1]!.candidates[0]!.priority, candidatePriority('host', 65_534));
  assert.ok(target.localCandidates.every((c) => c.priority !== heardByA[1]!.candidates[0]!.priority));
  assert.equal(heardByA[1]!.end, true);
  // A late subscriber gets what already arrived.
  const late: TrickledCandidates[] = [];
  a.client.onCandidates(session, (batch) => late.push(batch));
  assert.deepEqual(late, heardByA);
  assert.equal(server.stats.trickled, 2);
  // After end-of-candidates the sender's own client stops it.
  await assert.rejects(b.client.trickle(session, [mapped]), (e: unknown) => e instanceof RendezvousError && e.reason === 'trickle-limit');
});

test('trickling needs a punched session: before it, or after the window, the client says unknown-session', async () => {
  const { a, b, session } = await punched();
  await assert.rejects(a.client.trickle('AAAAAAAAAAAAAAAAAAAAAA', [mapped]), (e: unknown) => {
    assert.ok(e instanceof RendezvousError);
    assert.equal(e.reason, 'unknown-session');
    assert.match(e.message, /no punched session AAAAAAAAAAAAAAAAAAAAAA within the last 30000 ms/);
    return true;
  });
  const heardByB = collect(b);
  await a.client.trickle(session, [mapped]);
  await until(() => heardByB.length === 1, 'b hears a');
  assert.equal(heardByB[0]!.peer, a.identity.peerId);
});

test('trickle candidates are checked before signing: a multicast one is a usage error, nothing is sent', async () => {
  const { a, session, server } = await punched();
  const multicast = { ...mapped, address: { family: 4 as const, address: '239.1.1.1', port: 5 } };
  await assert.rejects(a.client.trickle(session, [multicast]), (e: unknown) => (e as { code?: string }).code === 'ERR_USAGE' && /not multicast/.test((e as Error).message));
  assert.equal(server.stats.trickled, 0);
});

test('the server bounds each peer\'s trickle per session: messages, candidates, nothing after the end', async () => {
  const { raw, trickle, session, a, server } = await rawPunched(resources, { maxTrickleMessages: 3, maxTrickleCandidates: 4, trickleBurst: 10, trickleMessagesPerSecond: 10 });
  const heardByA = collect(a);
  const c = (port: number) => candidate(`192.0.2.1:${port}`, 'srflx');
  assert.equal((await raw.ask(trickle({ seq: 1, candidates: [c(1), c(2), c(3)] }))).type, 'ack');
  const over = await raw.ask(trickle({ seq: 2, candidates: [c(4), c(5)] }));
  assert.deepEqual([over.type, over['code'], over['id'], over['ref']], ['error', 'trickle-limit', raw.lastId, session]);
  assert.match(String(over['message']), /allows 3 messages and 4 candidates per peer; 1 and 3 used, 2 more sent/);
  assert.equal((await raw.ask(trickle({ seq: 2, candidates: [c(4)], end: true }))).type, 'ack');
  const after = await raw.ask(trickle({ seq: 3, candidates: [] }));
  assert.deepEqual([after['code'], after['message']], ['trickle-limit', `trickle: end-of-candidates was already sent for session ${session}`]);
  await until(() => heardByA.length === 2, 'a heard the two accepted trickles');
  assert.deepEqual(heardByA.map((b) => b.candidates.length), [3, 1]);
  assert.equal(server.stats.trickled, 2);
});

test('the server rate-limits trickle per session: a burst, then the sustained rate', async () => {
  const { raw, trickle } = await rawPunched(resources, { trickleBurst: 2, trickleMessagesPerSecond: 1 });
  assert.equal((await raw.ask(trickle({ seq: 1 }))).type, 'ack');
  assert.equal((await raw.ask(trickle({ seq: 2 }))).type, 'ack');
  const limited = await raw.ask(trickle({ seq: 3 }));
  assert.deepEqual([limited['code'], limited['id']], ['rate-limited', raw.lastId]);
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  assert.equal((await raw.ask(trickle({ seq: 3 }))).type, 'ack');
});

test('a trickle signed by another key passes the server and is rejected by the peer it reaches', async () => {
  // The server checks who sends (the socket proved its key at registration); the signature is the
  // receiving peer's to verify (decision 004, "Who verifies what").
  const { raw, trickle, a } = await rawPunched(resources);
  const heardByA = collect(a);
  const rejectedByA: RendezvousVerifyError[] = [];
  a.client.on('rejected', (error) => rejectedByA.push(error));
  const { generateIdentity } = await import('../../src/identity/index.js');
  assert.equal((await raw.ask(trickle({ seq: 1, candidates: [candidate('127.0.0.1:7')] }, generateIdentity()))).type, 'ack');
  await until(() => rejectedByA.length === 1, 'a rejecting the forged trickle');
  assert.equal(rejectedByA[0]!.reason, 'bad-signature');
  assert.equal(heardByA.length, 0, 'no candidate of the forged trickle reached the application');
});

test('the server refuses a trickle whose signed session is not the message\'s', async () => {
  const { raw, trickle, session, a } = await rawPunched(resources);
  const heardByA = collect(a);
  const elsewhere = await raw.ask({ ...trickle({ seq: 1 }), session: token() });
  assert.equal(elsewhere['code'], 'unknown-session');
  const other = token();
  const mismatched = await raw.ask({ ...trickle({ seq: 1, session: other }), session });
  assert.deepEqual([mismatched['code'], mismatched['message']], ['invalid', `trickle.signed.body.session: ${other}, but the message is for ${session}`]);
  assert.equal(heardByA.length, 0, 'nothing was forwarded');
});

test('a punched session forwards trickles only within its window, and ends with either socket', async () => {
  const { raw, trickle, server } = await rawPunched(resources, { trickleWindowMs: 200 });
  assert.equal(server.stats.trickleSessions, 1);
  await until(() => server.stats.trickleSessions === 0, 'the window closed');
  const late = await raw.ask(trickle({ seq: 1 }));
  assert.deepEqual([late.type, late['code']], ['error', 'unknown-session']);
  // Either socket closing ends it at once.
  const again = await rawPunched(resources);
  assert.equal(again.server.stats.trickleSessions, 1);
  again.raw.ws.close();
  await until(() => again.server.stats.trickleSessions === 0, 'the session ended with the socket');
});

test('only the peers of a session may trickle into it, and only to a peer that negotiated trickle', async () => {
  const { url, session } = await punched();
  const { raw: stranger, identity } = await registerRaw(resources, url);
  const reply = await stranger.ask({ type: 'trickle', session, signed: signObject(identity, DOMAIN.trickle, { session, seq: 1, candidates: [] }) });
  assert.deepEqual([reply['code'], reply['ref']], ['unknown-session', session]);
  // A peer that registered without trickle cannot send any.
  const servers = await startServers(resources);
  const b = await startPeer(resources, servers.url);
  const raw = await RawClient.open(resources, servers.url);
  const hello = await raw.next();
  const { generateIdentity } = await import('../../src/identity/index.js');
  const me = generateIdentity();
  const signed = signObject(me, DOMAIN.register, { peerId: me.peerId, nonce: hello['nonce'], privateEndpoints: [], srflx: null });
  assert.deepEqual((await raw.ask({ type: 'register', version: 2, capabilities: [], signed })).type, 'registered');
  const result = b.client.connect(me.peerId);
  const intent = (await raw.next())['intent'] as { body: string; sig: string };
  const s = (peekSigned(intent) as { session: string }).session;
  const accept = signObject(me, DOMAIN.accept, { session: s, intentHash: bodyHash(intent), candidates: [], nonce: token() });
  assert.equal((await raw.ask({ type: 'accept', accept })).type, 'punch');
  await result;
  const refused = await raw.ask({ type: 'trickle', session: s, signed: signObject(me, DOMAIN.trickle, { session: s, seq: 1, candidates: [] }) });
  assert.deepEqual([refused['code'], refused['message']], ['unsupported-capability', 'trickle: this peer did not negotiate the \'trickle\' capability']);
});
