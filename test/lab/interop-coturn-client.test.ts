import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withLab, natTruth, type NatKind, type Lab } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { runNatDiscovery, runStunclient, type Rfc5780Response } from '../support/coturn.js';
import { startServe, endpointIp as ip, endpointPort as port, type RunningServe } from '../support/serve.js';
import { localHost, skipUnlessInstalled } from '../support/process.js';

/**
 * Interop: coturn's STUN clients (turnutils_stunclient, turnutils_natdiscovery) against
 * `natpunch serve` with an alternate address. Behind each lab NAT they must see the reflexive
 * address the router gives and classify the NAT as the lab built it — coturn's RFC 5780 client
 * logic, not ours, reading our OTHER-ADDRESS, RESPONSE-ORIGIN, CHANGE-REQUEST and RESPONSE-PORT.
 */

const COTURN_CLIENTS = ['turnutils_stunclient', 'turnutils_natdiscovery', 'stdbuf'] as const;
const INSTALL_HINT = 'apt-get install -y coturn';
const PRIMARY = '198.51.100.10';
const ALTERNATE = '198.51.100.11';

/** turnutils_stunclient's three exchanges when nothing filters: plain, CHANGE-REQUEST + RESPONSE-PORT, CHANGE-REQUEST. */
function assertCompleteStunclientRun(responses: Rfc5780Response[], serve: RunningServe, label: string): void {
  assert.equal(responses.length, 3, label);
  const [first, second, third] = responses as [Rfc5780Response, Rfc5780Response, Rfc5780Response];
  // Change IP and port: the answer comes from the alternate address and port.
  assert.equal(second.responseOrigin, serve.other, label);
  assert.equal(third.responseOrigin, serve.other, label);
  // The second request came from the first socket, so it reports the same reflexive address...
  assert.equal(second.reflexive, first.reflexive, label);
  // ...yet it was heard on the socket bound to local port + 1: RESPONSE-PORT was honoured. The
  // third request was sent from that socket, whose reflexive port shows it.
  assert.equal(port(third.reflexive), port(first.reflexive)! + 1, label);
}

test('coturn natdiscovery and stunclient find no NAT through natpunch serve on loopback', { timeout: 90_000 }, async (t) => {
  if (skipUnlessInstalled(t, COTURN_CLIENTS, INSTALL_HINT)) return;
  const serve = await startServe(localHost, '127.0.0.1', '127.0.0.2', ['--port', '0', '--alt-port', '0', '--http-port', '0', '--no-relay']);
  try {
    const primary = serve.primary;
    assert.ok(serve.other, `serve listed no alternate endpoint: ${serve.endpoints.join(' ')}`);
    const truth = natTruth('open');

    const stun = await runStunclient(localHost, '127.0.0.1', { port: port(primary)!, firstResponseOnly: false });
    assert.equal(stun[0]?.responseOrigin, primary, JSON.stringify(stun));
    assert.equal(stun[0]?.otherAddress, serve.other, JSON.stringify(stun));
    assert.equal(ip(stun[0]!.reflexive), '127.0.0.1');
    assertCompleteStunclientRun(stun, serve, JSON.stringify(stun));

    const found = await runNatDiscovery(localHost, '127.0.0.1', { local: '127.0.0.1', port: port(primary)! });
    const label = found.text;
    assert.equal(found.natted, truth.natted, label);
    assert.equal(found.mapping, truth.mapping, label);
    assert.equal(found.filtering, truth.filtering, label);
    // Without a NAT, a packet to one's own reflexive address is simply delivered.
    assert.equal(found.hairpin, true, label);
    assert.ok(found.responses.length >= 4, label);
    for (const response of found.responses) {
      assert.equal(response.reflexive, response.local, label);
      assert.ok(serve.endpoints.includes(response.responseOrigin!), label);
    }
  } finally {
    await serve.stop();
  }
});

/**
 * Two kinds per lab (routers a and b) keep the number of topologies down; a hairpins, b not.
 * The kinds the brief names (full/restricted/port-restricted cone, symmetric-random, open) plus
 * the rest that pass UDP.
 */
const pairs: [NatKind, NatKind][] = [
  ['full-cone', 'restricted-cone'],
  ['port-restricted', 'symmetric-random'],
  ['open', 'symmetric-firewall'],
  ['symmetric-seq', 'eim-random-port'],
];

async function checkBehind(lab: Lab, routerName: 'a' | 'b', hairpinOn: boolean, serve: RunningServe): Promise<void> {
  const router = lab.routers[routerName]!;
  const host = lab.hosts[`${routerName}1`]!;
  const truth = natTruth(router.kind);
  const own = host.addresses[0]!;
  const publicAddress = truth.natted ? router.wanAddress : own;

  // stunclient's second answer goes to a port the client never sent from: only an unfiltered,
  // untranslated host hears it; behind anything else the tool waits forever after answer one.
  const unfiltered = !truth.natted && truth.filtering === 'endpoint-independent';
  const stun = await runStunclient(host, PRIMARY, { firstResponseOnly: !unfiltered });
  const stunLabel = `stunclient behind ${router.kind}: ${JSON.stringify(stun)}`;
  assert.equal(ip(stun[0]?.reflexive ?? null), publicAddress, stunLabel);
  assert.equal(stun[0]?.responseOrigin, serve.primary, stunLabel);
  assert.equal(stun[0]?.otherAddress, serve.other, stunLabel);
  if (unfiltered) assertCompleteStunclientRun(stun, serve, stunLabel);

  const found = await runNatDiscovery(host, PRIMARY, { local: own });
  const label = `natdiscovery behind ${router.kind} (hairpin ${hairpinOn ? 'on' : 'off'}):\n${found.text}`;
  assert.equal(found.natted, truth.natted, label);
  assert.equal(found.mapping, truth.mapping, label);
  assert.equal(found.filtering, truth.filtering, label);
  // A host with a public address reaches its own reflexive address without any NAT help.
  assert.equal(found.hairpin, truth.natted ? hairpinOn : true, label);
  assert.ok(found.responses.length >= 4, label);
  for (const response of found.responses) {
    assert.equal(ip(response.reflexive), publicAddress, label);
    assert.equal(ip(response.local), own, label);
    assert.ok(serve.endpoints.includes(response.responseOrigin!), label);
  }
  // A free port is kept by port-preserving NATs (and trivially without a NAT).
  if (truth.portAllocation === 'preserving') assert.equal(port(found.responses[0]!.reflexive), port(found.responses[0]!.local), label);
}

for (const [kindA, kindB] of pairs) {
  test(`coturn's STUN clients behind ${kindA} (hairpin on) and ${kindB} (hairpin off) see what the lab built, through natpunch serve`, { timeout: 120_000 }, async (t) => {
    if (skipUnlessLab(t) || skipUnlessInstalled(t, COTURN_CLIENTS, INSTALL_HINT)) return;
    await withLab({ a: { kind: kindA, hairpin: true }, b: { kind: kindB, hairpin: false } }, async (lab) => {
      const serve = await startServe(lab.server, PRIMARY, ALTERNATE, ['--no-relay']);
      try {
        assert.equal(serve.primary, `${PRIMARY}:3478`);
        assert.equal(serve.other, `${ALTERNATE}:3479`);
        await Promise.all([checkBehind(lab, 'a', true, serve), checkBehind(lab, 'b', false, serve)]);
      } finally {
        await serve.stop();
      }
    });
  });
}
