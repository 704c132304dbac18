/**
 * `report`: a peer tells the server how a punched session ended for it (connected, with the path
 * and technique, or failed), for the server's statistics. The server takes one per peer per
 * session, only within the session's window and only with the 'report' capability, and turns
 * it into an event whose labels come from closed lists, whatever the peer sent.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { once } from '../support/wait.js';
import { type PunchInstruction, RendezvousError } from '../../src/rendezvous/index.js';
import { type ReportEvent, reportChannel } from '../../src/rendezvous/server-events.js';
import { Resources, rawPunched, startPeer, startServers, token, until } from './helpers.js';
import { NatpunchServer } from '../../src/server/natpunch-server.js';
import { type Connection, createPeer, generateIdentity } from '../../src/index.js';

const resources = new Resources();
afterEach(() => resources.close());

/** The report events of `server`, as the metrics see them. */
function listen(server: object): ReportEvent[] {
  const events: ReportEvent[] = [];
  const onReport = (message: unknown): void => {
    if ((message as ReportEvent).server === server) events.push(message as ReportEvent);
  };
  reportChannel.subscribe(onReport);
  resources.add(onReport, (f) => reportChannel.unsubscribe(f));
  return events;
}

test('both peers of a punched session report once each; the server acks, labels each by role, and refuses a second report', async () => {
  const { server, url } = await startServers(resources);
  const events = listen(server);
  const a = await startPeer(resources, url);
  const b = await startPeer(resources, url);
  assert.deepEqual(a.client.negotiated.capabilities, ['trickle', 'report']);
  const incoming = once(b.client, 'punch') as Promise<[PunchInstruction]>;
  const initiator = await a.client.connect(b.identity.peerId);
  const [target] = await incoming;
  // 'report' is between peer and server: intents and accepts sign only what concerns the other peer.
  assert.deepEqual(initiator.remoteCapabilities, ['trickle']);
  assert.deepEqual(target.remoteCapabilities, ['trickle']);

  assert.equal(await a.client.report(initiator.session, { outcome: 'connected', path: 'direct-udp', technique: 'udp-hole-punch', ms: 41.6 }), true);
  assert.equal(await b.client.report(target.session, { outcome: 'failed', ms: 12_000 }), true);
  assert.equal(events.length, 2);
  const [fromA, fromB] = events;
  assert.deepEqual({ ...fromA, server: undefined }, {
    server: undefined, role: 'initiator', outcome: 'connected', path: 'direct-udp', technique: 'udp-hole-punch', ms: 42, initiator: fromA!.initiator, target: fromA!.target,
  });
  assert.deepEqual([fromB!.role, fromB!.outcome, fromB!.path, fromB!.technique, fromB!.ms], ['target', 'failed', 'none', 'none', 12_000]);
  // The NAT classes the server proved at registration, the same for both reports of one session.
  assert.deepEqual([fromA!.initiator, fromA!.target], [fromB!.initiator, fromB!.target]);

  await assert.rejects(a.client.report(initiator.session, { outcome: 'failed', ms: 1 }), (e: unknown) => {
    assert.ok(e instanceof RendezvousError);
    assert.equal(e.reason, 'invalid');
    assert.match(e.message, new RegExp(`session ${initiator.session} was already reported by this peer`));
    return true;
  });
  assert.equal(events.length, 2, 'the second report was not counted');
});

test('a report needs a session this peer was punched into, within its window', async () => {
  const { server, url } = await startServers(resources, { limits: { trickleWindowMs: 300 } });
  const events = listen(server);
  const a = await startPeer(resources, url);
  const b = await startPeer(resources, url);
  const c = await startPeer(resources, url);
  await assert.rejects(a.client.report(token(), { outcome: 'failed', ms: 5 }), (e: unknown) => e instanceof RendezvousError && e.reason === 'unknown-session'
    && /no punched session \S+ of this peer within the last 300 ms/.test(e.message));
  const incoming = once(b.client, 'punch');
  const { session } = await a.client.connect(b.identity.peerId);
  await incoming;
  // A third peer cannot report on a session it was not part of.
  await assert.rejects(c.client.report(session, { outcome: 'failed', ms: 5 }), (e: unknown) => e instanceof RendezvousError && e.reason === 'unknown-session');
  // After the window the session is gone for reports as for trickles.
  await until(() => server.stats.trickleSessions === 0, 'the window closed');
  await assert.rejects(a.client.report(session, { outcome: 'connected', path: 'relay', technique: 'turn-udp', ms: 5 }), (e: unknown) => e instanceof RendezvousError && e.reason === 'unknown-session');
  assert.equal(events.length, 0);
});

test('punched sessions are kept up to maxPunchedSessions, whatever the cap on pending ones; beyond it a report gets unknown-session', async () => {
  // Before, punched sessions shared maxSessions (10000) with pending ones: above ~330 connects/s
  // sustained, most sessions could neither trickle nor report.
  const { server, url } = await startServers(resources, { limits: { maxSessions: 1, maxPunchedSessions: 2 } });
  const events = listen(server);
  const a = await startPeer(resources, url);
  const targets = [await startPeer(resources, url), await startPeer(resources, url), await startPeer(resources, url)];
  const sessions: string[] = [];
  for (const target of targets) {
    const incoming = once(target.client, 'punch');
    sessions.push((await a.client.connect(target.identity.peerId)).session);
    await incoming;
  }
  assert.equal(server.stats.trickleSessions, 2);
  for (const session of sessions.slice(0, 2)) {
    assert.equal(await a.client.report(session, { outcome: 'connected', path: 'direct-udp', technique: 'udp-hole-punch', ms: 5 }), true);
  }
  await assert.rejects(a.client.report(sessions[2]!, { outcome: 'connected', path: 'direct-udp', technique: 'udp-hole-punch', ms: 5 }),
    (e: unknown) => e instanceof RendezvousError && e.reason === 'unknown-session');
  assert.equal(events.length, 2);
});

test('without the capability nothing is sent: a peer that opts out, or a server that does not offer it', async () => {
  const offering = await startServers(resources);
  const events = listen(offering.server);
  const optedOut = await startPeer(resources, offering.url, { capabilities: ['trickle'] });
  const other = await startPeer(resources, offering.url);
  assert.deepEqual(optedOut.client.negotiated.capabilities, ['trickle']);
  const incoming = once(other.client, 'punch');
  const { session } = await optedOut.client.connect(other.identity.peerId);
  await incoming;
  assert.equal(await optedOut.client.report(session, { outcome: 'failed', ms: 1 }), false);

  const silent = await startServers(resources, { capabilities: ['trickle'] });
  const old = await startPeer(resources, silent.url);
  const peer = await startPeer(resources, silent.url);
  assert.deepEqual(old.client.negotiated.capabilities, ['trickle']);
  const punched = once(peer.client, 'punch');
  const second = await old.client.connect(peer.identity.peerId);
  await punched;
  assert.equal(await old.client.report(second.session, { outcome: 'connected', path: 'direct-udp', technique: 'udp-hole-punch', ms: 1 }), false);
  assert.equal(events.length, 0);
});

test('the server checks what a raw peer reports: the capability, the shape, and labels from closed lists only', async () => {
  const { raw, session, server } = await rawPunched(resources);
  const events = listen(server);
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ outcome: 'connected', ms: 5 }, /report\.path: expected a path and a technique for outcome "connected"/],
    [{ outcome: 'failed', path: 'relay', technique: 'turn-udp', ms: 5 }, /report\.path: expected no path or technique for outcome "failed"/],
    [{ outcome: 'connected', path: 'carrier-pigeon', technique: 'udp-hole-punch', ms: 5 }, /report\.path: expected "direct-udp" or "direct-tcp" or "relay"/],
    [{ outcome: 'connected', path: 'relay', technique: 'TURN UDP', ms: 5 }, /report\.technique: expected a technique name/],
    [{ outcome: 'maybe', ms: 5 }, /report\.outcome: expected "connected" or "failed"/],
    [{ outcome: 'failed', ms: -1 }, /report\.ms: expected an integer in 0\.\.600000/],
    [{ outcome: 'failed', ms: 1.5 }, /report\.ms: expected an integer/],
  ];
  for (const [fields, message] of bad) {
    const answer = await raw.ask({ type: 'report', session, ...fields });
    assert.deepEqual([answer.type, answer['code'], answer['id']], ['error', 'invalid', raw.lastId], JSON.stringify(fields));
    assert.match(String(answer['message']), message);
  }
  // A technique this server does not know is counted, as "other": label values never come from a peer.
  const taken = await raw.ask({ type: 'report', session, outcome: 'connected', path: 'direct-udp', technique: 'x'.repeat(32), ms: 600_000 });
  assert.deepEqual([taken.type, taken['id']], ['ack', raw.lastId]);
  assert.deepEqual(events.map((e) => [e.role, e.outcome, e.path, e.technique, e.ms]), [['target', 'connected', 'direct-udp', 'other', 600_000]]);

  const without = await rawPunched(resources, {}, { capabilities: ['trickle'] });
  const refused = await without.raw.ask({ type: 'report', session: without.session, outcome: 'failed', ms: 1 });
  assert.deepEqual([refused['code'], refused['message']], ['unsupported-capability', 'report: this peer did not negotiate the \'report\' capability']);
});

test('createPeer reports the connections it initiates; the target, and a peer with report: false (natpunch --no-report), never do', { timeout: 60_000 }, async () => {
  const server = resources.add(await NatpunchServer.listen({ address: '127.0.0.1', port: 0, httpPort: 0 }), (s) => s.close());
  const events = listen(server.rendezvous!);
  const quiet = resources.add(await createPeer({ server: server.rendezvousUrl!, identity: generateIdentity(), report: false }), (p) => p.close());
  const talkative = resources.add(await createPeer({ server: server.rendezvousUrl!, identity: generateIdentity() }), (p) => p.close());
  const connections: Connection[] = [];
  // talkative -> quiet: the initiator reports.
  let incoming = once(quiet, 'connection');
  const first = await talkative.connect(quiet.peerId);
  connections.push(first, ...(await incoming as [Connection]));
  await until(() => events.length === 1, 'the initiator reported');
  // quiet -> talkative: nobody does. Had either sent a report, it left before its connect()
  // resolved or its 'connection' fired: an answer to a later request on the same socket comes
  // after the server handled it.
  incoming = once(talkative, 'connection');
  connections.push(await quiet.connect(talkative.peerId), ...(await incoming as [Connection]));
  await assert.rejects(quiet.connect(generateIdentity().peerId), /not registered/);
  await assert.rejects(talkative.connect(generateIdentity().peerId), /not registered/);
  assert.deepEqual(events.map((e) => [e.role, e.outcome, e.path, e.technique === first.technique || e.technique === 'other', e.ms >= 0]),
    [['initiator', 'connected', first.path, true, true]]);
  for (const c of connections) c.destroy();
});
