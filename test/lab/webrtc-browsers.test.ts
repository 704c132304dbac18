/**
 * Interop (issue 11: browsers use our servers): two headless Chromium peers, each inside a lab
 * host behind its own NAT, use `natpunch serve` as their STUN and TURN server — Chromium's own
 * ICE agent (libwebrtc) against our server code. They gather a server-reflexive candidate from
 * our STUN and relayed ones from our TURN (over UDP and over TCP, long-term credentials from
 * `--turn-user`), connect, and an ordered, reliable data channel carries 1 MiB each way, checked
 * by SHA-256 in the receiving browser against the hash the test took of what it handed the sender.
 *
 * The routers count what leaves their WAN toward the other NAT and toward our STUN/TURN port,
 * so the path is proven by the packets, not only by what the browsers report about themselves —
 * and that the browsers sent nothing anywhere else.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { withLab, type Lab, type NatKind } from '../../src/lab/index.js';
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
const TURN_UDP = `turn:${SERVER}:${STUN_PORT}?transport=udp`;
const TURN_TCP = `turn:${SERVER}:${STUN_PORT}?transport=tcp`;
const ICE_SERVERS: PeerConfig['iceServers'] = [
  { urls: `stun:${SERVER}:${STUN_PORT}` },
  { urls: TURN_UDP, username: TURN_USER, credential: TURN_PASSWORD },
  { urls: TURN_TCP, username: TURN_USER, credential: TURN_PASSWORD },
];

type SideName = 'a' | 'b';
interface Side {
  name: SideName;
  host: string;
  /** The other side's router: counting what this NAT sends to it tells a direct path. */
  other: SideName;
}
const SIDES: readonly Side[] = [{ name: 'a', host: 'a1', other: 'b' }, { name: 'b', host: 'b1', other: 'a' }];

interface WanCounts {
  /** Bytes to the other NAT's public address. */
  toPeer: number;
  /** Bytes to our STUN/TURN port, UDP or TCP. */
  toTurn: number;
  /** Packets to anything but our server and the other NAT: a browser calling home would show here. */
  elsewhere: number;
}

interface Meeting {
  /** getStats after the transfer, per side. */
  stats: Record<SideName, PeerStats>;
  /** What each router sent out of its WAN while the browsers ran. */
  counted: Record<SideName, WanCounts>;
  /** Each NAT's public (WAN) address. */
  wan: Record<SideName, string>;
}

/**
 * Build the lab, start `natpunch serve` with a TURN user, put a browser behind each NAT, let
 * them meet with `policy`, and move 1 MiB each way. Asserts the bytes arrive intact and that
 * nothing left for other hosts; returns what the caller asserts about the path.
 */
async function browsersMeet(t: TestContext, kinds: Record<SideName, NatKind>, policy: 'all' | 'relay', signalling: 'complete' | 'trickle'): Promise<Meeting> {
  return withLab({ a: { kind: kinds.a }, b: { kind: kinds.b } }, async (lab) => {
    const ms: Record<string, number> = {};
    let mark = Date.now();
    const step = (name: string): void => { const now = Date.now(); ms[name] = now - mark; mark = now; };
    await countWanTraffic(lab);
    const browsers: LabBrowser[] = [];
    // The server and both browsers start side by side; whatever did start is stopped in the
    // finally below even when another start failed.
    const [served, ...launched] = await Promise.allSettled([
      startServe(lab.server, SERVER, ALT_SERVER, ['--http-port', '8080', '--turn-user', `${TURN_USER}:${TURN_PASSWORD}`]),
      ...SIDES.map((side) => launchChromiumIn(lab.hosts[side.host]!, [SERVER])),
    ]);
    for (const result of launched) if (result.status === 'fulfilled') browsers.push(result.value);
    const serve = served.status === 'fulfilled' ? served.value : null;
    try {
      for (const result of [served, ...launched]) if (result.status === 'rejected') throw result.reason;
      step('serve and browsers');
      const [a, b] = await Promise.all(browsers.map(async (browser) => new PagePeerHandle(await browser.open(PAGE_HTML)))) as [PagePeerHandle, PagePeerHandle];
      step('pages');
      const config: PeerConfig = { iceServers: ICE_SERVERS, iceTransportPolicy: policy };
      // Signalling through this process: offer and answer, each with every candidate in it once
      // gathering is complete, or at once with each candidate trickled as found (webrtc-page.ts).
      const trickle = signalling === 'trickle';
      if (trickle) {
        await a.trickleTo(b);
        await b.trickleTo(a);
      }
      await a.start(config, true);
      await b.start(config, false);
      await a.accept(await b.answer(await a.offer(!trickle), !trickle));
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
      t.diagnostic(`${kinds.a} × ${kinds.b}, policy ${policy}: ${Object.entries(ms).map(([k, v]) => `${k} ${v} ms`).join(', ')}; ` +
        `selected: a ${describePair(stats.a)}, b ${describePair(stats.b)}; WAN out: a ${JSON.stringify(counted.a)}, b ${JSON.stringify(counted.b)}; ` +
        `candidate errors: a ${JSON.stringify(stats.a.errors)}, b ${JSON.stringify(stats.b.errors)}`);
      // The browsers talked to our server and to each other, to nothing else (CHROMIUM_ARGS).
      for (const side of SIDES) assert.equal(counted[side.name].elsewhere, 0, `${side.name}: ${counted[side.name].elsewhere} packet(s) left for other hosts`);
      return { stats, counted, wan: { a: lab.routers['a']!.wanAddress, b: lab.routers['b']!.wanAddress } };
    } catch (error) {
      // The server's side of a failure (a refused Allocate, say), beside the browser's own words.
      if (serve !== null) t.diagnostic(`natpunch serve's output:\n${serve.output.text.slice(-4000)}`);
      throw error;
    } finally {
      await Promise.all(browsers.map((browser) => browser.close()));
      await serve?.stop();
    }
  });
}

/** Counters on each router's WAN, outbound after NAT (Router.addCounter). */
async function countWanTraffic(lab: Lab): Promise<void> {
  for (const side of SIDES) {
    const router = lab.routers[side.name]!;
    const peer = lab.routers[side.other]!.wanAddress;
    await router.addCounter('to-peer', `ip daddr ${peer}`);
    await router.addCounter('to-turn', `ip daddr ${SERVER} meta l4proto { tcp, udp } th dport ${STUN_PORT}`);
    await router.addCounter('elsewhere', `ip daddr != { ${SERVER}, ${ALT_SERVER}, ${peer} }`);
  }
}

async function wanCounts(lab: Lab, name: SideName): Promise<WanCounts> {
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
  const end = (c: CandidateStats): string => `${c.candidateType}${c.relayProtocol ? `/${c.relayProtocol}` : ''} ${c.address || '(mdns)'}:${c.port}`;
  return `${end(s.local)} -> ${end(s.remote)}`;
}

/** The candidates a browser gathered of one type. */
function gatheredOf(stats: PeerStats, type: CandidateStats['candidateType']): CandidateStats[] {
  return stats.local.filter((c) => c.candidateType === type);
}

/**
 * Relay candidates gathered from our TURN, at least one over each transport in `transports`,
 * each relayed from the server; with `mapped`, each reporting the NAT's public address as
 * XOR-MAPPED-ADDRESS (RFC 8656 §7.3), which Chromium shows as the related address. (Once a
 * path works Chromium stops gathering, so a TURN/TCP allocation may or may not have been made
 * beside a UDP one; the udp-blocked test is where TCP must be.)
 */
function assertRelayed(side: SideName, stats: PeerStats, transports: readonly string[], mapped: string | null): void {
  const relay = gatheredOf(stats, 'relay');
  for (const transport of transports) {
    assert.ok(relay.some((c) => c.relayProtocol === transport), `${side}: no relay candidate over ${transport}: ${JSON.stringify(stats.local)}`);
  }
  for (const c of relay) {
    assert.equal(c.address, SERVER, `${side}: relay ${JSON.stringify(c)} is not on the server`);
    assert.equal(c.url, c.relayProtocol === 'tcp' ? TURN_TCP : TURN_UDP, `${side}: relay ${JSON.stringify(c)} from another server`);
    if (mapped !== null) assert.equal(c.relatedAddress, mapped, `${side}: relay ${JSON.stringify(c)}: XOR-MAPPED-ADDRESS is not the NAT's`);
  }
}

test('Chromium × Chromium through port-restricted × eim-random-port with our STUN and TURN: srflx and relay gathered, a direct pair selected, 1 MiB each way intact', { timeout: 120_000 }, async (t) => {
  if (skipUnlessLab(t) || skipUnlessChromium(t)) return;
  // a maps endpoint-independently and preserves ports, b maps endpoint-independently from a
  // random port: each browser's checks reach the other's srflx address and open its own NAT's
  // filter for the answer, so a direct path exists (NATLAB-FACTS: every cone × cone pair
  // punches). b's srflx port differs from its host port: ICE must use what our STUN reported.
  // Descriptions go across once gathering is complete, so both relay candidates exist before
  // any check: a's NAT drops b's checks until a, holding the answer, has sent its own.
  const meeting = await browsersMeet(t, { a: 'port-restricted', b: 'eim-random-port' }, 'all', 'complete');
  const wan = meeting.wan;
  for (const side of SIDES) {
    const stats = meeting.stats[side.name];
    // Our STUN told each browser its NAT's public address (XOR-MAPPED-ADDRESS).
    const srflx = gatheredOf(stats, 'srflx');
    assert.ok(srflx.length > 0, `${side.name}: no srflx candidate gathered: ${JSON.stringify(stats.local)}`);
    for (const c of srflx) assert.equal(c.address, wan[side.name], `${side.name}: srflx ${JSON.stringify(c)} is not the NAT's public address`);
    assertRelayed(side.name, stats, ['udp'], wan[side.name]);
    // Our servers answered every request Chromium sent (no icecandidateerror: no 4xx, no timeout).
    assert.deepEqual(stats.errors, [], `${side.name}: candidate errors`);
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

test('Chromium × Chromium with iceTransportPolicy "relay": only relay candidates, relay-to-relay through our TURN over UDP, 1 MiB each way intact, nothing NAT to NAT', { timeout: 120_000 }, async (t) => {
  if (skipUnlessLab(t) || skipUnlessChromium(t)) return;
  // The same NATs as above, where a direct path exists: only the policy keeps the browsers off it.
  const meeting = await browsersMeet(t, { a: 'port-restricted', b: 'eim-random-port' }, 'relay', 'complete');
  for (const side of SIDES) {
    const stats = meeting.stats[side.name];
    assert.deepEqual(stats.local.filter((c) => c.candidateType !== 'relay'), [], `${side.name}: the relay policy still exposed other candidates`);
    // (Under the relay policy Chromium hides a relay candidate's related address, the NAT's
    // mapping, from the page: the test above checks it.)
    assertRelayed(side.name, stats, ['udp'], null);
    assert.deepEqual(stats.errors, [], `${side.name}: candidate errors`);
    const pair = stats.selected;
    assert.ok(pair !== null, `${side.name}: no selected candidate pair`);
    assert.equal(pair.local.candidateType, 'relay', `${side.name}: selected ${describePair(stats)}`);
    assert.equal(pair.local.relayProtocol, 'udp', `${side.name}: selected ${describePair(stats)}`);
    assert.equal(pair.remote.candidateType, 'relay', `${side.name}: selected ${describePair(stats)}`);
    assert.equal(pair.remote.address, SERVER, `${side.name}: selected ${describePair(stats)}`);
    // Each browser's traffic went to our TURN port (ChannelData or Send indications), none to the other NAT.
    const counted = meeting.counted[side.name];
    assert.ok(counted.toTurn >= ONE_MIB, `${side.name}: only ${counted.toTurn} B went to the TURN port`);
    assert.equal(counted.toPeer, 0, `${side.name}: ${counted.toPeer} B went NAT to NAT despite the relay policy`);
  }
  // Each relays to the other's allocation: a's remote relay candidate is one of b's relayed addresses.
  const bRelayed = gatheredOf(meeting.stats.b, 'relay').map((c) => c.port);
  assert.ok(bRelayed.includes(meeting.stats.a.selected!.remote.port), `a selected ${describePair(meeting.stats.a)}, b's relayed ports ${bRelayed.join(', ')}`);
});

test('Chromium × Chromium behind udp-blocked × udp-blocked: TURN over TCP is the only way, relay-to-relay, 1 MiB each way intact', { timeout: 120_000 }, async (t) => {
  if (skipUnlessLab(t) || skipUnlessChromium(t)) return;
  // No UDP leaves either NAT: no srflx, no UDP allocation; Chromium's TURN client must carry
  // STUN-framed Allocate, ChannelBind and ChannelData (padded to 4 bytes on a stream, RFC 8656
  // §12.5) over TCP to our server, which relays between the two allocations.
  const meeting = await browsersMeet(t, { a: 'udp-blocked', b: 'udp-blocked' }, 'all', 'trickle');
  for (const side of SIDES) {
    const stats = meeting.stats[side.name];
    assert.deepEqual(gatheredOf(stats, 'srflx'), [], `${side.name}: a srflx candidate through a NAT that drops UDP`);
    assertRelayed(side.name, stats, ['tcp'], meeting.wan[side.name]);
    const pair = stats.selected;
    assert.ok(pair !== null, `${side.name}: no selected candidate pair`);
    assert.equal(pair.local.candidateType, 'relay', `${side.name}: selected ${describePair(stats)}`);
    assert.equal(pair.local.relayProtocol, 'tcp', `${side.name}: selected ${describePair(stats)}`);
    assert.equal(pair.remote.candidateType, 'relay', `${side.name}: selected ${describePair(stats)}`);
    const counted = meeting.counted[side.name];
    assert.ok(counted.toTurn >= ONE_MIB, `${side.name}: only ${counted.toTurn} B went to the TURN port`);
    assert.equal(counted.toPeer, 0, `${side.name}: ${counted.toPeer} B went NAT to NAT`);
    // Our STUN and TURN over UDP may have timed out by now (701): that is the blocked UDP. TURN
    // over TCP must not have failed at all.
    assert.deepEqual(stats.errors.filter((e) => e.url === TURN_TCP || e.signal !== undefined), [], `${side.name}: candidate errors`);
  }
});
