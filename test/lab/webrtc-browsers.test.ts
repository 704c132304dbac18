/**
 * Interop (issue 11: browsers use our servers): two headless Chromium peers, each inside a lab
 * host behind its own NAT, use `natpunch serve` as their STUN and TURN server — Chromium's own
 * ICE agent (libwebrtc) against our server code. They gather a server-reflexive candidate from
 * our STUN and a relayed one from our TURN (long-term credentials, `--turn-user`), connect, and
 * an ordered, reliable data channel carries 1 MiB each way, checked by SHA-256 in the receiving
 * browser against the hash the test took of what it handed the sender.
 *
 * NATs: a (port-restricted: EIM, port-preserving, address-and-port-dependent filtering) and
 * b (eim-random-port: EIM with a fresh random external port). Both map endpoint-independently,
 * so each browser's checks reach the other's srflx address and open its own NAT's filter for
 * the answer: a direct path exists (NATLAB-FACTS: every cone × cone pair punches). b's srflx
 * port differs from its host port, so ICE has to use what our STUN reported.
 *
 * The routers count what leaves their WAN toward the other NAT and toward our TURN port, so the
 * path is proven by the packets, not only by what the browsers report about themselves.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { withLab, type Lab } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { startServe } from '../support/serve.js';
import { launchChromiumIn, skipUnlessChromium, type LabBrowser } from '../support/chromium.js';
import { PAGE_HTML, PagePeerHandle, type CandidateStats, type PeerConfig, type PeerStats } from '../support/webrtc-page.js';

const SERVER = '198.51.100.10';
const ALT_SERVER = '198.51.100.11';
const STUN_PORT = 3478;
const ONE_MIB = 1 << 20;
/** Long-term TURN credentials (RFC 8656 §9.2), fresh per run: Chromium authenticates with them. */
const TURN_USER = 'browser';
const TURN_PASSWORD = randomBytes(12).toString('hex');
const ICE_SERVERS: PeerConfig['iceServers'] = [
  { urls: `stun:${SERVER}:${STUN_PORT}` },
  { urls: `turn:${SERVER}:${STUN_PORT}?transport=udp`, username: TURN_USER, credential: TURN_PASSWORD },
];

interface Side {
  name: 'a' | 'b';
  host: string;
  /** The other side's router: counting what this NAT sends to it tells a direct path. */
  other: 'a' | 'b';
}
const SIDES: readonly Side[] = [{ name: 'a', host: 'a1', other: 'b' }, { name: 'b', host: 'b1', other: 'a' }];

interface Meeting {
  /** getStats after the transfer, per side. */
  stats: Record<'a' | 'b', PeerStats>;
  /** Bytes each router sent out of its WAN: to the other NAT, to our STUN/TURN port, and anywhere else. */
  counted: Record<'a' | 'b', WanCounts>;
  /** Each NAT's public (WAN) address. */
  wan: Record<'a' | 'b', string>;
  /** Milliseconds each step took, for the diagnostic line. */
  ms: Record<string, number>;
}

/**
 * Build the lab, start `natpunch serve` with a TURN user, put a browser behind each NAT, let
 * them meet with `policy`, and move 1 MiB each way. Asserts the bytes arrive intact; returns
 * what the caller asserts about the path.
 */
async function browsersMeet(t: TestContext, policy: 'all' | 'relay'): Promise<Meeting> {
  return withLab({ a: { kind: 'port-restricted' }, b: { kind: 'eim-random-port' } }, async (lab) => {
    const ms: Record<string, number> = {};
    let mark = Date.now();
    const step = (name: string): void => { const now = Date.now(); ms[name] = now - mark; mark = now; };
    const serve = await startServe(lab.server, SERVER, ALT_SERVER, ['--http-port', '8080', '--turn-user', `${TURN_USER}:${TURN_PASSWORD}`]);
    const browsers: LabBrowser[] = [];
    try {
      await countWanTraffic(lab);
      step('serve');
      // Launched one after the other into the list, so a failure of the second still closes the first.
      for (const side of SIDES) browsers.push(await launchChromiumIn(lab.hosts[side.host]!));
      step('launch');
      const [a, b] = await Promise.all(browsers.map(async (browser) => new PagePeerHandle(await browser.open(PAGE_HTML)))) as [PagePeerHandle, PagePeerHandle];
      step('page');
      const config: PeerConfig = { iceServers: ICE_SERVERS, iceTransportPolicy: policy };
      await a.start(config, true);
      await b.start(config, false);
      // Non-trickle signalling through this process: each description carries every candidate.
      const offer = await a.offer();
      const answer = await b.answer(offer);
      await a.accept(answer);
      step('gather');
      await Promise.all([a.opened(), b.opened()]);
      step('connect');

      const payload = { a: randomBytes(ONE_MIB), b: randomBytes(ONE_MIB) };
      const [receivedByB, receivedByA] = await Promise.all([b.received(ONE_MIB), a.received(ONE_MIB), a.send(payload.a), b.send(payload.b)]);
      step('transfer');
      const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
      assert.deepEqual(receivedByB, { bytes: ONE_MIB, sha256: sha256(payload.a) }, 'a -> b: the bytes b received differ from those a sent');
      assert.deepEqual(receivedByA, { bytes: ONE_MIB, sha256: sha256(payload.b) }, 'b -> a: the bytes a received differ from those b sent');

      const stats = { a: await a.stats(), b: await b.stats() };
      const counted = { a: await wanCounts(lab, 'a'), b: await wanCounts(lab, 'b') };
      // The browsers talked to our server and to each other, to nothing else (CHROMIUM_ARGS).
      for (const side of SIDES) assert.equal(counted[side.name].elsewhere, 0, `${side.name}: ${counted[side.name].elsewhere} packet(s) left for other hosts`);
      t.diagnostic(`${policy}: ${Object.entries(ms).map(([k, v]) => `${k} ${v} ms`).join(', ')}; selected a ${describePair(stats.a)}, b ${describePair(stats.b)}; ` +
        `WAN bytes out a ${JSON.stringify(counted.a)}, b ${JSON.stringify(counted.b)}`);
      return { stats, counted, wan: { a: lab.routers['a']!.wanAddress, b: lab.routers['b']!.wanAddress }, ms };
    } catch (error) {
      // The server's side of a failure (a refused Allocate, say), beside the browser's own words.
      t.diagnostic(`natpunch serve's output:\n${serve.output.text.slice(-4000)}`);
      throw error;
    } finally {
      await Promise.all(browsers.map((browser) => browser.close()));
      await serve.stop();
    }
  });
}

interface WanCounts {
  toPeer: number;
  toTurn: number;
  /** Packets to anything but our server and the other NAT: a browser calling home would show here. */
  elsewhere: number;
}

/** Counters on each router's WAN, outbound after NAT. */
async function countWanTraffic(lab: Lab): Promise<void> {
  for (const side of SIDES) {
    const router = lab.routers[side.name]!;
    const peer = lab.routers[side.other]!.wanAddress;
    await router.addCounter('to-peer', `ip daddr ${peer}`);
    await router.addCounter('to-turn', `ip daddr ${SERVER} udp dport ${STUN_PORT}`);
    await router.addCounter('elsewhere', `ip daddr != { ${SERVER}, ${ALT_SERVER}, ${peer} }`);
  }
}

async function wanCounts(lab: Lab, name: 'a' | 'b'): Promise<WanCounts> {
  const router = lab.routers[name]!;
  return {
    toPeer: (await router.counter('to-peer')).bytes,
    toTurn: (await router.counter('to-turn')).bytes,
    elsewhere: (await router.counter('elsewhere')).packets,
  };
}

function describePair(stats: PeerStats): string {
  const s = stats.selected;
  if (s === null) return 'none';
  const end = (c: CandidateStats): string => `${c.candidateType} ${c.address || '(mdns)'}:${c.port}`;
  return `${end(s.local)} -> ${end(s.remote)}`;
}

/** The candidates a browser gathered of one type, for assertions and their messages. */
function gatheredOf(stats: PeerStats, type: CandidateStats['candidateType']): CandidateStats[] {
  return stats.local.filter((c) => c.candidateType === type);
}

test('Chromium × Chromium through port-restricted × eim-random-port with our STUN and TURN: srflx and relay gathered, a direct pair selected, 1 MiB each way intact', { timeout: 120_000 }, async (t) => {
  if (skipUnlessLab(t) || skipUnlessChromium(t)) return;
  const meeting = await browsersMeet(t, 'all');
  const wan = meeting.wan;
  for (const side of SIDES) {
    const stats = meeting.stats[side.name];
    const all = JSON.stringify(stats.local);
    // Our STUN told each browser its NAT's public address (XOR-MAPPED-ADDRESS).
    const srflx = gatheredOf(stats, 'srflx');
    assert.ok(srflx.length > 0, `${side.name}: no srflx candidate gathered: ${all}`);
    for (const c of srflx) assert.equal(c.address, wan[side.name], `${side.name}: srflx ${JSON.stringify(c)} is not the NAT's public address`);
    // Our TURN allocated a relayed address on the server, and reported the same mapping (RFC 8656 §7.3).
    const relay = gatheredOf(stats, 'relay');
    assert.ok(relay.length > 0, `${side.name}: no relay candidate gathered: ${all}`);
    for (const c of relay) {
      assert.equal(c.address, SERVER, `${side.name}: relay ${JSON.stringify(c)} is not on the server`);
      assert.equal(c.relatedAddress, wan[side.name], `${side.name}: relay ${JSON.stringify(c)}: XOR-MAPPED-ADDRESS is not the NAT's`);
      assert.equal(c.url, ICE_SERVERS[1]!.urls);
    }
    // The direct path: neither end relayed, and the far end is the other NAT's public mapping.
    const pair = stats.selected;
    assert.ok(pair !== null, `${side.name}: no selected candidate pair`);
    assert.match(pair.local.candidateType, /^(host|srflx|prflx)$/, `${side.name}: selected ${describePair(stats)}`);
    assert.match(pair.remote.candidateType, /^(srflx|prflx)$/, `${side.name}: selected ${describePair(stats)}`);
    assert.equal(pair.remote.address, wan[side.other], `${side.name}: selected ${describePair(stats)}`);
    assert.ok(pair.bytesReceived >= ONE_MIB && pair.bytesSent >= ONE_MIB, `${side.name}: the selected pair carried ${pair.bytesSent} B out, ${pair.bytesReceived} B in`);
    // The packets agree: the megabyte left this NAT for the other one, not for the relay.
    const counted = meeting.counted[side.name];
    assert.ok(counted.toPeer >= ONE_MIB, `${side.name}: only ${counted.toPeer} B went NAT to NAT`);
    assert.ok(counted.toTurn < ONE_MIB / 4, `${side.name}: ${counted.toTurn} B went to the TURN port on a direct connection`);
  }
  // b's NAT picks a random external port: the pair a selected is b's mapping, not b's own port.
  const bMapped = gatheredOf(meeting.stats.b, 'srflx')[0]!.port;
  assert.equal(meeting.stats.a.selected!.remote.port, bMapped, `a selected ${describePair(meeting.stats.a)}, b's srflx port is ${bMapped}`);
});

test('Chromium × Chromium with iceTransportPolicy "relay": only relay candidates, relay-to-relay through our TURN, 1 MiB each way intact, nothing NAT to NAT', { timeout: 120_000 }, async (t) => {
  if (skipUnlessLab(t) || skipUnlessChromium(t)) return;
  const meeting = await browsersMeet(t, 'relay');
  for (const side of SIDES) {
    const stats = meeting.stats[side.name];
    const all = JSON.stringify(stats.local);
    const relay = gatheredOf(stats, 'relay');
    assert.ok(relay.length > 0, `${side.name}: no relay candidate gathered: ${all}`);
    assert.equal(relay.length, stats.local.length, `${side.name}: the relay policy still exposed other candidates: ${all}`);
    // (Under the relay policy Chromium hides a relay candidate's related address, the NAT's
    // mapping, from the page: the first test checks it.)
    for (const c of relay) assert.equal(c.address, SERVER, `${side.name}: relay ${JSON.stringify(c)} is not on the server`);
    const pair = stats.selected;
    assert.ok(pair !== null, `${side.name}: no selected candidate pair`);
    assert.equal(pair.local.candidateType, 'relay', `${side.name}: selected ${describePair(stats)}`);
    assert.equal(pair.remote.candidateType, 'relay', `${side.name}: selected ${describePair(stats)}`);
    assert.equal(pair.remote.address, SERVER, `${side.name}: selected ${describePair(stats)}`);
    // Each browser's traffic went to our TURN port (ChannelData or Send indications), none to the other NAT.
    const counted = meeting.counted[side.name];
    assert.ok(counted.toTurn >= ONE_MIB, `${side.name}: only ${counted.toTurn} B went to the TURN port`);
    assert.equal(counted.toPeer, 0, `${side.name}: ${counted.toPeer} B went NAT to NAT despite the relay policy`);
  }
  // Each relays to the other's allocation: a's remote relay candidate is b's relayed address.
  const bRelayed = gatheredOf(meeting.stats.b, 'relay').map((c) => c.port);
  assert.ok(bRelayed.includes(meeting.stats.a.selected!.remote.port), `a selected ${describePair(meeting.stats.a)}, b's relayed ports ${bRelayed.join(', ')}`);
});
