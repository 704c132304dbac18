import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { UdpMux } from '../../src/punch/udp-mux.js';
import { MAX_PEER_REFLEXIVE, NOMINATION_WAIT_MS, UdpCheckSession, type UdpPunchOptions } from '../../src/punch/udp-checks.js';
import { VirtualClock } from '../../src/sim/virtual-clock.js';
import { candidateTypeOf } from '../../src/punch/candidate.js';
import {
  AttrType, MessageClass, Method, decodeMessage, encodeMessage, getAttribute, username, xorMappedAddress, type StunMessage, type TransportAddress,
} from '../../src/wire/index.js';
import { once, until } from '../support/wait.js';

interface Endpoint { socket: dgram.Socket; mux: UdpMux; address: TransportAddress; sessions: UdpCheckSession[] }

/**
 * A UDP socket on 127.0.0.1 with its mux. When the test ends, pass or fail, the check sessions on
 * it are closed and then the socket, so no timer outlives a failed test or sends on a closed socket.
 */
async function endpoint(t: TestContext): Promise<Endpoint> {
  const socket = dgram.createSocket('udp4');
  const sessions: UdpCheckSession[] = [];
  t.after(() => {
    for (const checks of sessions) checks.close();
    socket.close();
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return { socket, mux: new UdpMux(socket), address: { family: 4, address: '127.0.0.1', port: socket.address().port }, sessions };
}

/** A check session on `local`'s socket, closed with it. */
function session(local: Endpoint, options: Omit<UdpPunchOptions, 'mux'>): UdpCheckSession {
  const checks = new UdpCheckSession({ mux: local.mux, ...options });
  local.sessions.push(checks);
  return checks;
}

test('two sessions find each other and agree on the nominated pair', async (t) => {
  const a = await endpoint(t);
  const b = await endpoint(t);
  const dead = await endpoint(t); // a candidate that never answers: must not be chosen
  const key = randomBytes(32);
  const startAt = Date.now() + 20;
  const sa = session(a, { session: 's1', key, role: 'controlling', startAt,
    remoteCandidates: [{ type: 'srflx', address: dead.address }, { type: 'host', address: b.address }] });
  const sb = session(b, { session: 's1', key, role: 'controlled', startAt,
    remoteCandidates: [{ type: 'host', address: a.address }] });
  const [ra, rb] = await Promise.all([sa.result, sb.result]);
  assert.deepEqual(ra.remote, b.address);
  assert.deepEqual(rb.remote, a.address);
  assert.ok(ra.checksSent < 60, `bounded: ${ra.checksSent} checks`);
});

test('checks with the wrong key are not answered and punching times out with a clear error', async (t) => {
  const a = await endpoint(t);
  const b = await endpoint(t);
  const sa = session(a, { session: 's2', key: randomBytes(32), role: 'controlling', timeoutMs: 600,
    remoteCandidates: [{ type: 'host', address: b.address }] });
  const sb = session(b, { session: 's2', key: randomBytes(32), role: 'controlled', timeoutMs: 600,
    remoteCandidates: [{ type: 'host', address: a.address }] });
  await assert.rejects(sa.result, (e: unknown) => (e as { code?: string }).code === 'ERR_TRANSPORT' && /no working path/.test(String(e)));
  await assert.rejects(sb.result);
});

/** Every STUN message `socket` receives, decoded, with where it came from; `answer` may reply to each. */
function listen(local: Endpoint, answer?: (message: StunMessage, from: TransportAddress) => Uint8Array | undefined): { message: StunMessage; from: TransportAddress }[] {
  const received: { message: StunMessage; from: TransportAddress }[] = [];
  local.socket.on('message', (data, rinfo) => {
    const from: TransportAddress = { family: 4, address: rinfo.address, port: rinfo.port };
    const message = decodeMessage(data);
    received.push({ message, from });
    const reply = answer?.(message, from);
    if (reply !== undefined) local.socket.send(reply, from.port, from.address);
  });
  return received;
}

const isCheck = (message: StunMessage): boolean => message.method === Method.Binding && message.messageClass === MessageClass.Request;

/** A Binding success response to `request`, as the checked peer would send it but with `integrity` as given (none, or a wrong key). */
function forgedSuccess(request: StunMessage, from: TransportAddress, integrity: Uint8Array | undefined): Uint8Array {
  return encodeMessage({
    method: Method.Binding, messageClass: MessageClass.SuccessResponse, transactionId: request.transactionId,
    attributes: [{ type: AttrType.XorMappedAddress, value: xorMappedAddress.encode(from, request.transactionId) }],
  }, { ...(integrity === undefined ? {} : { integrity: { key: integrity, algorithm: 'sha256' as const } }), fingerprint: true });
}

// RFC 8445 §7.2.5.2.1 with §7.2.2: a success response counts only with MESSAGE-INTEGRITY under the
// session key. The attacker below sits at the very address the session checks (so the "response
// comes from where the request went" rule lets it through) and sees every check, so only the
// integrity check stands between it and the nomination.
for (const [forgery, integrity] of [['without MESSAGE-INTEGRITY', undefined], ['with MESSAGE-INTEGRITY under another key', randomBytes(32)]] as const) {
  test(`a success response ${forgery} from the checked address does not make the pair work or get nominated`, async (t) => {
    const victim = await endpoint(t);
    const attacker = await endpoint(t);
    const received = listen(attacker, (message, from) => (isCheck(message) ? forgedSuccess(message, from, integrity) : undefined));
    const checks = session(victim, { session: 's-forged', key: randomBytes(32), role: 'controlling', timeoutMs: 1500,
      remoteCandidates: [{ type: 'host', address: attacker.address }] });
    // Accepted, the first forgery would make the pair work and the second answer its nomination.
    await assert.rejects(checks.result, (e: unknown) => (e as { code?: string }).code === 'ERR_TRANSPORT' && /no working path/.test(String(e)));
    assert.equal(checks.selected, undefined);
    const answered = received.filter((r) => isCheck(r.message)).length;
    assert.ok(answered >= 2, `the attacker saw and answered the checks (${answered})`);
    assert.ok(received.every((r) => getAttribute(r.message, AttrType.UseCandidate) === undefined), 'no check ever nominated the attacker');
  });
}

test(`more than MAX_PEER_REFLEXIVE (${MAX_PEER_REFLEXIVE}) sources of verified checks get triggered checks from only the first ${MAX_PEER_REFLEXIVE}`, async (t) => {
  const key = randomBytes(32);
  const local = await endpoint(t);
  session(local, { session: 's-prflx', key, role: 'controlled', remoteCandidates: [] });
  // Each source sends one check that verifies (right USERNAME, right key) and never answers the
  // session's own checks, so every peer-reflexive pair it learns stays waiting and is checked again
  // and again.
  const sources = await Promise.all(Array.from({ length: MAX_PEER_REFLEXIVE + 4 }, () => endpoint(t)));
  const seen = sources.map((source) => listen(source));
  const checksTo = (i: number): number => seen[i]!.filter((r) => isCheck(r.message)).length;
  for (const [i, source] of sources.entries()) {
    const request = encodeMessage({
      method: Method.Binding, messageClass: MessageClass.Request, transactionId: randomBytes(12),
      attributes: [{ type: AttrType.Username, value: username.encode('s-prflx') }],
    }, { integrity: { key, algorithm: 'sha256' }, fingerprint: true });
    source.socket.send(request, local.address.port, local.address.address);
    // In order: source i's check is handled (answered) before source i + 1 sends.
    await until(() => seen[i]!.some((r) => r.message.messageClass === MessageClass.SuccessResponse), `the session to answer source ${i}`);
  }
  // A triggered check goes out at once (most overdue) and each waiting pair is checked again only
  // CHECK_INTERVAL_MS later: once the first sources have had their second check, every pair the
  // session holds has had its first.
  const capped = Array.from({ length: MAX_PEER_REFLEXIVE }, (_, i) => i);
  await until(() => capped.every((i) => checksTo(i) >= 2), `a second check to each of the first ${MAX_PEER_REFLEXIVE} sources`,
    { seen: () => JSON.stringify(sources.map((_, i) => checksTo(i))) });
  const checked = sources.filter((_, i) => checksTo(i) > 0).length;
  assert.equal(checked, MAX_PEER_REFLEXIVE, `checks per source: ${JSON.stringify(sources.map((_, i) => checksTo(i)))}`);
});

/**
 * Two dual-stack hosts on virtual time, each with one socket per family, joined by a wire whose
 * one-way delay is given per family (undefined: that family's datagrams are lost). Only what
 * UdpCheckSession uses of a UdpMux: onStun, send, hasFamily.
 */
function dualStack(clock: VirtualClock, oneWayMs: { 4: number; 6: number | undefined }) {
  const hosts = ['a', 'b'].map((name, i) => {
    const handlers: ((data: Buffer, from: TransportAddress) => boolean)[] = [];
    const v4: TransportAddress = { family: 4, address: `203.0.113.${20 + i}`, port: 40000 + i };
    const v6: TransportAddress = { family: 6, address: `2001:db8:${i + 1}::2`, port: 50000 + i };
    return { name, v4, v6, handlers, mux: {} as UdpMux };
  });
  for (const host of hosts) {
    const other = hosts.find((h) => h !== host)!;
    host.mux = {
      hasFamily: () => true,
      onStun: (handler: (data: Buffer, from: TransportAddress) => boolean) => { host.handlers.push(handler); return () => undefined; },
      send: (data: Uint8Array, to: TransportAddress) => {
        const delay = oneWayMs[to.family];
        if (delay === undefined || (to.address !== other.v4.address && to.address !== other.v6.address)) return;
        const from = to.family === 6 ? host.v6 : host.v4;
        const copy = Buffer.from(data);
        clock.setTimeout(() => { for (const handler of other.handlers) if (handler(copy, from)) break; }, delay);
      },
    } as unknown as UdpMux;
  }
  return hosts as [typeof hosts[0], typeof hosts[0]];
}

/**
 * A dual-stack pair whose IPv6 path is slower than the IPv4 one (neighbour discovery before the
 * first IPv6 packet, where IPv4's ARP is warm; seen in the lab). The IPv4 server-reflexive pair
 * succeeds first, a round trip after the IPv6 host check left; the IPv6 pair is still the one
 * nominated (RFC 8421 §4), and a dead IPv6 path costs at most NOMINATION_WAIT_MS.max.
 */
for (const [name, ipv6OneWayMs, expected] of [
  ['an IPv6 host pair answering a few ms after the IPv4 srflx pair is still the one nominated', 4, 6],
  ['with IPv6 lost on the way, the IPv4 srflx pair is nominated NOMINATION_WAIT_MS.max after the IPv6 check left', undefined, 4],
] as const) {
  test(name, async () => {
    const clock = new VirtualClock();
    const [a, b] = dualStack(clock, { 4: 1, 6: ipv6OneWayMs });
    const key = randomBytes(32);
    const common = { session: 's-dual', key, startAt: clock.wallNow(), wallClock: clock.wallNow, clock };
    const sa = new UdpCheckSession({ ...common, mux: a.mux, role: 'controlling',
      remoteCandidates: [{ type: 'host', address: b.v6 }, { type: 'srflx', address: b.v4 }] });
    const sb = new UdpCheckSession({ ...common, mux: b.mux, role: 'controlled',
      remoteCandidates: [{ type: 'host', address: a.v6 }, { type: 'srflx', address: a.v4 }] });
    try {
      const [ra, rb] = await clock.run(Promise.all([sa.result, sb.result]));
      assert.equal(ra.remote.family, expected, `controlling chose ${JSON.stringify(ra)}`);
      assert.equal(rb.remote.family, expected, `controlled chose ${JSON.stringify(rb)}`);
      // Both first checks leave at 0 and the IPv4 one is answered at 2 ms. Then either the IPv6
      // answer (one IPv6 round trip) and the nomination's (another), or the wait and an IPv4 one.
      const bound = expected === 6 ? 4 * ipv6OneWayMs! : NOMINATION_WAIT_MS.max + 2;
      assert.ok(clock.now() <= bound, `selected at ${clock.now()} virtual ms, more than ${bound}`);
    } finally {
      sa.close();
      sb.close();
    }
  });
}

test('candidate types come from the address bytes', () => {
  assert.equal(candidateTypeOf({ family: 4, address: '10.1.2.3', port: 1 }), 'host');
  assert.equal(candidateTypeOf({ family: 4, address: '192.168.1.1', port: 1 }), 'host');
  assert.equal(candidateTypeOf({ family: 4, address: '172.20.0.1', port: 1 }), 'host');
  assert.equal(candidateTypeOf({ family: 4, address: '203.0.113.5', port: 1 }), 'srflx');
  assert.equal(candidateTypeOf({ family: 4, address: '100.64.0.1', port: 1 }), 'srflx');
});
