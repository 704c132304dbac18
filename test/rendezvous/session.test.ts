import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { once } from '../support/wait.js';
import { generateIdentity, InvalidPeerIdError } from '../../src/identity/index.js';
import {
  type PunchInstruction, DOMAIN, RendezvousClient, RendezvousError, type RendezvousVerifyError, bodyHash, openSigned, peekSigned, signObject,
} from '../../src/rendezvous/index.js';
import { AttrType, username } from '../../src/wire/index.js';
import { StunUdpClient } from '../../src/stun/udp-client.js';
import { candidatePriority, type CandidateTransport, type CandidateType, type SignalledCandidate } from '../../src/punch/candidate.js';
import { RawClient, Resources, candidate, registerRaw, startPeer, startServers, token, udpSocket } from './helpers.js';

/** The typed candidate a peer signs for "ip:port" (IPv4 unless it has brackets). */
function typed(text: string, type: CandidateType = 'host', transport: CandidateTransport = 'udp', localPreference = transport === 'udp' ? 65_535 : 32_767): SignalledCandidate {
  const v6 = text.startsWith('[');
  const address = v6 ? text.slice(1, text.indexOf(']')) : text.slice(0, text.lastIndexOf(':'));
  const port = Number(text.slice(text.lastIndexOf(':') + 1));
  return { type, transport, address: { family: v6 ? 6 : 4, address, port }, priority: candidatePriority(type, localPreference) };
}

const resources = new Resources();
afterEach(() => resources.close());

test('a peer registers with its server-reflexive address proven by a STUN Binding from its UDP socket', async () => {
  const { url, server } = await startServers(resources);
  const peer = await startPeer(resources, url);
  assert.equal(peer.client.srflx, peer.endpoint, 'on loopback the reflexive address is the socket itself');
  assert.equal(server.stats.peers, 1);
});

test('two peers connect: both get a punch with the other side\'s signed candidates, opposite roles, one key', async () => {
  const { url, server } = await startServers(resources);
  const a = await startPeer(resources, url);
  const b = await startPeer(resources, url);
  const incoming = once(b.client, 'punch') as Promise<[PunchInstruction]>;
  const before = Date.now();
  const initiator = await a.client.connect(b.identity.peerId);
  const [target] = await incoming;

  assert.equal(initiator.session, target.session);
  assert.equal(initiator.peer, b.identity.peerId);
  assert.equal(target.peer, a.identity.peerId);
  assert.equal(initiator.role, 'controlling');
  assert.equal(target.role, 'controlled');
  // On loopback the srflx is the host candidate itself: signed once, as host.
  assert.deepEqual(initiator.remoteCandidates, [typed(b.endpoint)]);
  assert.deepEqual(target.remoteCandidates, [typed(a.endpoint)]);
  assert.deepEqual(initiator.remoteCapabilities, ['trickle']);
  assert.deepEqual(initiator.localCandidates, target.remoteCandidates);
  assert.deepEqual(target.localCandidates, initiator.remoteCandidates);
  assert.equal(initiator.key.length, 32);
  assert.deepEqual(initiator.key, target.key);
  assert.ok(initiator.startAt >= before && initiator.startAt <= Date.now() + 5000);
  assert.equal(server.stats.punches, 1);
  assert.equal(server.stats.sessions, 0, 'the session is gone once punched');
});

test('the target can refuse; the initiator\'s connect rejects with reason "refused"', async () => {
  const { url } = await startServers(resources);
  const a = await startPeer(resources, url);
  const asked: string[] = [];
  const b = await startPeer(resources, url, { accept: (from) => { asked.push(from); return false; } });
  const error = await a.client.connect(b.identity.peerId).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof RendezvousError);
  assert.equal(error.code, 'ERR_RENDEZVOUS');
  assert.equal(error.reason, 'refused');
  assert.deepEqual(asked, [a.identity.peerId]);
});

test('connecting to a peer that is not registered rejects with reason "peer-not-found"', async () => {
  const { url } = await startServers(resources);
  const a = await startPeer(resources, url);
  await assert.rejects(a.client.connect(generateIdentity().peerId), (e: unknown) => e instanceof RendezvousError && e.reason === 'peer-not-found');
});

test('connect refuses a malformed peer id before sending anything', async () => {
  const { url } = await startServers(resources);
  const a = await startPeer(resources, url);
  await assert.rejects(a.client.connect('not-a-peer-id'), (e: unknown) => e instanceof InvalidPeerIdError && e.code === 'ERR_USAGE');
});

test('connect times out with reason "timeout" when the target never answers', async () => {
  const { url } = await startServers(resources);
  const a = await startPeer(resources, url);
  // A raw peer that registers and then ignores the incoming intent.
  const { raw, identity } = await registerRaw(resources, url);
  const result = a.client.connect(identity.peerId, { timeoutMs: 300 });
  assert.equal((await raw.next()).type, 'incoming');
  await assert.rejects(result, (e: unknown) => e instanceof RendezvousError && e.reason === 'timeout');
});

test('connect can be aborted', async () => {
  const { url } = await startServers(resources);
  const a = await startPeer(resources, url);
  const { identity } = await registerRaw(resources, url);
  const controller = new AbortController();
  const result = a.client.connect(identity.peerId, { signal: controller.signal });
  controller.abort();
  await assert.rejects(result, (e: unknown) => (e as { code?: string }).code === 'ERR_ABORTED');
});

test('a newer registration of the same peer id replaces the older, which is told and closed', async () => {
  const { url, server } = await startServers(resources);
  const identity = generateIdentity();
  const first = await startPeer(resources, url, { identity });
  const closed = once(first.client, 'close') as Promise<[RendezvousError]>;
  await startPeer(resources, url, { identity });
  const [reason] = await closed;
  assert.equal(reason.reason, 'replaced');
  assert.equal(server.stats.peers, 1);
});

test('a registration claiming a server-reflexive address the STUN port never saw is refused', async () => {
  const { url } = await startServers(resources, { limits: { srflxWaitMs: 200 } });
  const identity = generateIdentity();
  const raw = await RawClient.open(resources, url);
  const hello = await raw.next();
  const signed = signObject(identity, DOMAIN.register, { peerId: identity.peerId, nonce: hello['nonce'], privateEndpoints: [], srflx: '203.0.113.7:4000' });
  const reply = await raw.ask({ type: 'register', signed });
  assert.deepEqual([reply.type, reply['code']], ['error', 'srflx-unproven']);
});

/** A raw socket that has said its hello token to the STUN port from a fresh UDP socket. */
async function helloWithStunProof() {
  const { url, stun } = await startServers(resources);
  const raw = await RawClient.open(resources, url);
  const hello = await raw.next();
  const socket = await udpSocket(resources);
  const stunClient = new StunUdpClient(socket);
  await stunClient.request(stun.addresses[0]!, { attributes: [{ type: AttrType.Username, value: username.encode(String(hello['token'])) }] });
  stunClient.close();
  return { raw, hello, socket, identity: generateIdentity() };
}

test('a registration claiming a different address than its STUN Binding came from is refused', async () => {
  const { raw, hello, socket, identity } = await helloWithStunProof();
  const wrong = `127.0.0.1:${socket.address().port === 9 ? 10 : 9}`;
  const signed = signObject(identity, DOMAIN.register, { peerId: identity.peerId, nonce: hello['nonce'], privateEndpoints: [], srflx: wrong });
  const reply = await raw.ask({ type: 'register', signed });
  assert.deepEqual([reply.type, reply['code']], ['error', 'srflx-mismatch']);
  assert.match(String(reply['message']), new RegExp(`came from 127\\.0\\.0\\.1:${socket.address().port}`));
});

test('registered reports what the STUN port observed even when the peer claims nothing', async () => {
  const { raw, hello, socket, identity } = await helloWithStunProof();
  const signed = signObject(identity, DOMAIN.register, { peerId: identity.peerId, nonce: hello['nonce'], privateEndpoints: [], srflx: null });
  const reply = await raw.ask({ type: 'register', signed });
  assert.deepEqual(reply, {
    type: 'registered', id: raw.lastId, version: 2, capabilities: ['trickle', 'report'], peerId: identity.peerId, srflx: null, observedSrflx: `127.0.0.1:${socket.address().port}`,
  });
});

test('a registration must sign this connection\'s nonce and verify with the key in its peer id', async () => {
  const { url } = await startServers(resources);
  const identity = generateIdentity();
  const raw = await RawClient.open(resources, url);
  const hello = await raw.next();
  const stale = signObject(identity, DOMAIN.register, { peerId: identity.peerId, nonce: token(), privateEndpoints: [], srflx: null });
  assert.equal((await raw.ask({ type: 'register', signed: stale }))['code'], 'bad-nonce');
  const impostor = signObject(generateIdentity(), DOMAIN.register, { peerId: identity.peerId, nonce: hello['nonce'], privateEndpoints: [], srflx: null });
  assert.equal((await raw.ask({ type: 'register', signed: impostor }))['code'], 'bad-signature');
  // A signature made for another purpose (an intent) does not pass as a registration.
  const crossDomain = signObject(identity, DOMAIN.intent, { peerId: identity.peerId, nonce: hello['nonce'], privateEndpoints: [], srflx: null });
  assert.equal((await raw.ask({ type: 'register', signed: crossDomain }))['code'], 'bad-signature');
  const good = signObject(identity, DOMAIN.register, { peerId: identity.peerId, nonce: hello['nonce'], privateEndpoints: [], srflx: null });
  assert.equal((await raw.ask({ type: 'register', signed: good })).type, 'registered');
  assert.equal((await raw.ask({ type: 'register', signed: good }))['code'], 'already-registered');
});

test('before registering, a socket may do nothing but register', async () => {
  const { url } = await startServers(resources);
  const { identity: target } = await registerRaw(resources, url);
  const raw = await RawClient.open(resources, url);
  await raw.next(); // hello
  const someone = generateIdentity();
  const intent = signObject(someone, DOMAIN.intent, {
    from: someone.peerId, to: target.peerId, nonce: token(), expires: Date.now() + 10_000, candidates: [], session: token(),
  });
  for (const message of [
    { type: 'connect', intent },
    { type: 'accept', accept: intent },
    { type: 'refuse', session: token(), reason: 'no' },
  ]) {
    const reply = await raw.ask(message);
    assert.deepEqual([reply.type, reply['code']], ['error', 'not-registered'], message.type);
  }
});

test('the server forwards only intents signed by the socket\'s own peer, for a live period', async () => {
  const { url } = await startServers(resources);
  const { raw, identity } = await registerRaw(resources, url);
  const target = await startPeer(resources, url);
  const intent = (fields: Record<string, unknown>, signer = identity) => signObject(signer, DOMAIN.intent, {
    from: identity.peerId, to: target.identity.peerId, nonce: token(), expires: Date.now() + 10_000, candidates: [candidate('127.0.0.1:9')], session: token(), ...fields,
  });
  const cases: [string, unknown, string][] = [
    ['from another peer', signObject(identity, DOMAIN.intent, {
      from: target.identity.peerId, to: identity.peerId, nonce: token(), expires: Date.now() + 10_000, candidates: [], session: token(),
    }), 'bad-intent'],
    ['to itself', intent({ to: identity.peerId }), 'bad-intent'],
    ['expired longer ago than the clock tolerance', intent({ expires: Date.now() - 30_001 }), 'expired'],
    ['too far ahead', intent({ expires: Date.now() + 3_600_000 }), 'expired'],
    ['with a multicast candidate', intent({ candidates: [candidate('224.0.0.1:5000')] }), 'invalid'],
    ['with version 1\'s "ip:port" candidates', intent({ candidates: ['127.0.0.1:9'] }), 'invalid'],
  ];
  for (const [what, signed, code] of cases) {
    const reply = await raw.ask({ type: 'connect', intent: signed });
    assert.deepEqual([reply.type, reply['code'], reply['id']], ['error', code, raw.lastId], `${what}: the error answers the request by its id`);
  }
});

test('an intent signed by another key than its sender\'s is refused by the target, and the initiator hears why', async () => {
  // The server checks that the intent names the socket's peer; the signature is the target's to
  // verify (decision 004, "Who verifies what"), and its refusal carries the reason back.
  const { url } = await startServers(resources);
  const { raw, identity } = await registerRaw(resources, url);
  const target = await startPeer(resources, url);
  const rejected: RendezvousVerifyError[] = [];
  target.client.on('rejected', (error) => rejected.push(error));
  const forged = signObject(generateIdentity(), DOMAIN.intent, {
    from: identity.peerId, to: target.identity.peerId, nonce: token(), expires: Date.now() + 10_000, candidates: [candidate('127.0.0.1:9')], session: token(),
  });
  const reply = await raw.ask({ type: 'connect', intent: forged });
  assert.deepEqual([reply.type, reply['code']], ['error', 'refused']);
  assert.match(String(reply['message']), /^bad-signature: signed intent: the signature does not verify with the key of /);
  assert.deepEqual(rejected.map((e) => e.reason), ['bad-signature']);
});

test('an accept must answer the forwarded intent and come from its target', async () => {
  const { url } = await startServers(resources);
  const a = await startPeer(resources, url);
  const { raw, identity } = await registerRaw(resources, url);
  const result = a.client.connect(identity.peerId).catch((e: unknown) => e);
  const incoming = await raw.next();
  const intent = incoming['intent'] as { body: string; sig: string };
  const session = (peekSigned(intent) as { session: string }).session;
  const accept = (fields: Record<string, unknown>) => signObject(identity, DOMAIN.accept, {
    session, intentHash: bodyHash(intent), candidates: [candidate('127.0.0.1:9')], nonce: token(), ...fields,
  });
  assert.equal((await raw.ask({ type: 'accept', accept: accept({ intentHash: bodyHash({ body: 'e30=', sig: '' }) }) }))['code'], 'bad-intent');
  assert.equal((await raw.ask({ type: 'accept', accept: accept({ session: token() }) }))['code'], 'unknown-session');
  const punch = await raw.ask({ type: 'accept', accept: accept({}) });
  assert.equal(punch.type, 'punch');
  assert.equal(punch['role'], 'controlled');
  assert.deepEqual(openSigned(punch['intent'] as { body: string; sig: string }, DOMAIN.intent, a.identity.peerId), peekSigned(intent));
  const instruction = await result as PunchInstruction;
  assert.deepEqual(instruction.remoteCandidates, [typed('127.0.0.1:9')]);
});

test('a pending session ends with "peer-not-found" for the initiator when the target disconnects', async () => {
  const { url } = await startServers(resources);
  const a = await startPeer(resources, url);
  const { raw, identity } = await registerRaw(resources, url);
  const result = a.client.connect(identity.peerId);
  assert.equal((await raw.next()).type, 'incoming');
  raw.ws.close();
  await assert.rejects(result, (e: unknown) => e instanceof RendezvousError && e.reason === 'peer-not-found');
});

test('a client registers through a caller-owned STUN client when the socket owner routes datagrams', async () => {
  const { url } = await startServers(resources);
  const socket = await udpSocket(resources);
  const stunClient = new StunUdpClient(socket, { listen: false });
  let routed = 0;
  socket.on('message', (data, rinfo) => { if (stunClient.handle(data, rinfo)) routed++; });
  const peer = await startPeer(resources, url, { udpSocket: socket, stunClient });
  assert.equal(peer.client.srflx, peer.endpoint);
  assert.equal(routed, 1);
  stunClient.close();
});

test('registration fails with the server\'s reason, and the client is left closed', async () => {
  const { url } = await startServers(resources, { limits: { maxPeers: 1 } });
  await startPeer(resources, url);
  const socket = await udpSocket(resources);
  await assert.rejects(
    RendezvousClient.connect({ url, identity: generateIdentity(), udpSocket: socket, privateEndpoints: [] }),
    (e: unknown) => e instanceof RendezvousError && e.reason === 'server-full',
  );
});

test('registration can be aborted and times out against a silent server', async () => {
  const socket = await udpSocket(resources);
  const controller = new AbortController();
  const { url } = await startServers(resources);
  const pending = RendezvousClient.connect({ url, identity: generateIdentity(), udpSocket: socket, privateEndpoints: [], signal: controller.signal });
  controller.abort();
  await assert.rejects(pending, (e: unknown) => (e as { code?: string }).code === 'ERR_ABORTED');
  // A TCP server that accepts the WebSocket handshake but never says hello.
  const { WebSocketServer } = await import('ws');
  const silent = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  resources.add(silent, (s) => new Promise((resolve) => { for (const c of s.clients) c.terminate(); s.close(resolve); }));
  await once(silent, 'listening');
  const port = (silent.address() as { port: number }).port;
  await assert.rejects(
    RendezvousClient.connect({ url: `ws://127.0.0.1:${port}/`, identity: generateIdentity(), udpSocket: socket, privateEndpoints: [], timeoutMs: 300 }),
    (e: unknown) => e instanceof RendezvousError && e.reason === 'timeout',
  );
});

test('candidates come from the candidates option when given, deduplicated and capped', async () => {
  const { url } = await startServers(resources);
  const many = Array.from({ length: 20 }, (_, i) => `10.0.0.${i + 1}:7000`);
  const a = await startPeer(resources, url, { privateEndpoints: [...many, many[0]!] });
  const b = await startPeer(resources, url, {
    candidates: () => ['192.0.2.1:5', '192.0.2.1:5', '[2001:db8::1]:6', { type: 'mapped', address: { family: 4, address: '198.51.100.9', port: 7 } }],
  });
  const incoming = once(b.client, 'punch') as Promise<[PunchInstruction]>;
  const instruction = await a.client.connect(b.identity.peerId);
  assert.equal(instruction.localCandidates.length, 16);
  assert.deepEqual(instruction.localCandidates.slice(0, 2), [typed('10.0.0.1:7000'), typed('10.0.0.2:7000', 'host', 'udp', 65_534)], 'one local preference per host candidate');
  // Strings are typed by what the peer knows: not one of its interfaces, so a mapping (srflx); objects say their type.
  assert.deepEqual(instruction.remoteCandidates, [typed('192.0.2.1:5', 'srflx'), typed('[2001:db8::1]:6', 'srflx', 'udp', 65_534), typed('198.51.100.9:7', 'mapped')]);
  assert.equal((await incoming)[0].remoteCandidates.length, 16);
});

test('bad private endpoints are a usage error at connect', async () => {
  const { url } = await startServers(resources);
  const socket = await udpSocket(resources);
  await assert.rejects(
    RendezvousClient.connect({ url, identity: generateIdentity(), udpSocket: socket, privateEndpoints: ['0.0.0.0:5'] }),
    (e: unknown) => (e as { code?: string }).code === 'ERR_USAGE' && /privateEndpoints\[0\]/.test((e as Error).message),
  );
});

test('a server attached to an existing HTTP server shares it and leaves it open on close', async () => {
  const http = await import('node:http');
  const { StunServer } = await import('../../src/stun/server.js');
  const { RendezvousServer, ReflexiveObserver } = await import('../../src/rendezvous/index.js');
  const observer = new ReflexiveObserver();
  const stun = resources.add(await StunServer.listen({ address: '127.0.0.1', port: 0, onBinding: observer.onBinding }), (s) => s.close());
  const httpServer = http.createServer((request, response) => response.writeHead(request.url === '/healthz' ? 200 : 404).end());
  resources.add(httpServer, (s) => new Promise((resolve) => { s.closeAllConnections(); s.close(resolve); }));
  const server = RendezvousServer.attach(httpServer, { stun, observer, stunAddresses: ['0.0.0.0:' + stun.addresses[0]!.port] });
  httpServer.listen(0, '127.0.0.1');
  await once(httpServer, 'listening');
  const peer = await startPeer(resources, server.url);
  assert.equal(peer.client.srflx, peer.endpoint, '"0.0.0.0:port" in hello means the rendezvous server\'s own address');
  assert.equal((await fetch(server.url.replace('ws:', 'http:') + 'healthz')).status, 200);
  await server.close();
  assert.equal(httpServer.listening, true);
});

test('TCP candidates and the requested transport reach both sides only from the signed intent and accept', async () => {
  const { url } = await startServers(resources);
  const a = await startPeer(resources, url, { tcpCandidates: () => ['127.0.0.1:40001', '127.0.0.1:40001'] });
  const b = await startPeer(resources, url, { tcpCandidates: () => ['127.0.0.1:40002'] });
  const incoming = once(b.client, 'punch') as Promise<[PunchInstruction]>;
  const initiator = await a.client.connect(b.identity.peerId, { transport: 'tcp' });
  const [target] = await incoming;
  assert.equal(initiator.transport, 'tcp');
  assert.equal(target.transport, 'tcp', 'the target follows the transport the initiator signed');
  assert.deepEqual(initiator.remoteTcpCandidates, [typed('127.0.0.1:40002', 'host', 'tcp')]);
  assert.deepEqual(target.remoteTcpCandidates, [typed('127.0.0.1:40001', 'host', 'tcp')], 'deduplicated before signing');
  assert.ok(target.remoteTcpCandidates[0]!.priority < target.remoteCandidates[0]!.priority, 'TCP ranks below UDP');
  assert.deepEqual(initiator.localTcpCandidates, target.remoteTcpCandidates);
  assert.deepEqual(target.localTcpCandidates, initiator.remoteTcpCandidates);

  // A peer that offers no TCP candidates signs UDP ones only; the other side sees none, over UDP.
  const c = await startPeer(resources, url);
  const incomingC = once(c.client, 'punch') as Promise<[PunchInstruction]>;
  const udp = await a.client.connect(c.identity.peerId);
  const [targetC] = await incomingC;
  assert.equal(udp.transport, 'udp');
  assert.equal(targetC.transport, 'udp');
  assert.deepEqual(udp.remoteTcpCandidates, []);
  assert.equal(targetC.remoteTcpCandidates.length, 1);
});

test('reachability claims and reversal listeners reach the other side only from the signed intent and accept', async () => {
  const { url } = await startServers(resources);
  const a = await startPeer(resources, url, { reachability: () => ({ reachable: ['udp', 'tcp'], tcpListen: ['127.0.0.1:40005', '127.0.0.1:40005'] }) });
  const b = await startPeer(resources, url, { reachability: () => ({ reachable: [], tcpListen: ['127.0.0.1:40006'] }) });
  const incoming = once(b.client, 'punch') as Promise<[PunchInstruction]>;
  const initiator = await a.client.connect(b.identity.peerId, { transport: 'auto' });
  const [target] = await incoming;
  assert.equal(initiator.transport, 'auto');
  assert.equal(target.transport, 'auto');
  assert.deepEqual(target.remoteReachable, { udp: true, tcp: true });
  assert.deepEqual(target.remoteTcpListen, [{ family: 4, address: '127.0.0.1', port: 40005 }], 'deduplicated before signing');
  assert.deepEqual(initiator.localReachable, { udp: true, tcp: true });
  assert.deepEqual(initiator.remoteReachable, { udp: false, tcp: false });
  assert.deepEqual(initiator.remoteTcpListen, [], 'listener endpoints without a signed claim of TCP reachability are ignored');
  assert.deepEqual(target.localReachable, { udp: false, tcp: false });
});

test('a server without dial-back reports no reachability', async () => {
  const { url } = await startServers(resources);
  const plain = await startPeer(resources, url);
  assert.equal(plain.client.serverReachability, null);
});
