import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withLab, type Host } from '../../src/lab/index.js';
import { HARD_RESEND_MS, HARD_SOCKETS, SPRAY_PROBES } from '../../src/punch/birthday.js';
import { skipUnlessLab } from '../support/lab.js';
import { startServe, transfer } from '../support/peers.js';

/**
 * Acceptance (issue 9): "a peer behind a hard NAT never sends more than its documented budget
 * (counted with nftables)". Birthday probing is the one technique that sends many datagrams to
 * many ports, so it is counted where nothing can hide it: an nftables table in each peer host's
 * own namespace, on the output hook, counting every UDP datagram the host sends toward the other
 * side's public address and the set of distinct ports it sent to (src/punch/birthday.ts):
 * - the hard side (symmetric-random) sends HARD_SOCKETS checks and the same again at each of
 *   HARD_RESEND_MS, all to the one endpoint the easy side signed;
 * - the easy side (port-restricted) sends at most SPRAY_PROBES checks, to distinct ports.
 * Beside them each side sends its ordinary checks (one every 200 ms per pair at most, for a few
 * seconds), the handshake, 4 KiB of stream data and its acknowledgements: OTHER_TRAFFIC allows
 * for those, a small fraction of the budgets.
 */
const OTHER_TRAFFIC = 300;

const TABLE = 'natpunch_budget';

/** Counts UDP datagrams from this host to `address`, and the distinct destination ports. */
async function countToward(host: Host, address: string): Promise<() => Promise<{ packets: number; ports: number }>> {
  const ruleset = `table ip ${TABLE} {
  set ports { type inet_service; flags dynamic; size 65536; }
  counter sent { }
  chain output {
    type filter hook output priority 0; policy accept;
    ip daddr ${address} meta l4proto udp counter name "sent" add @ports { udp dport }
  }
}
`;
  const loaded = await host.exec(['nft', '-f', '-'], { input: ruleset, timeoutMs: 20_000 });
  assert.equal(loaded.code, 0, `nft in ${host.name}: ${loaded.stderr}`);
  return async () => {
    const listed = await host.exec(['nft', '-j', 'list', 'table', 'ip', TABLE], { timeoutMs: 20_000 });
    assert.equal(listed.code, 0, listed.stderr);
    const objects = (JSON.parse(listed.stdout) as { nftables: Record<string, { name?: string; packets?: number; elem?: unknown[] }>[] }).nftables;
    const counter = objects.find((o) => o.counter?.name === 'sent')?.counter;
    const set = objects.find((o) => o.set?.name === 'ports')?.set;
    return { packets: counter?.packets ?? 0, ports: set?.elem?.length ?? 0 };
  };
}

test('symmetric-random × port-restricted, birthday probing: each side stays within its documented budget, counted by nftables in its own host', { timeout: 300_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'symmetric-random' }, b: { kind: 'port-restricted' } }, async (lab) => {
    await startServe(lab);
    const hard = await countToward(lab.hosts.a1!, lab.routers.b!.wanAddress);
    const easy = await countToward(lab.hosts.b1!, lab.routers.a!.wanAddress);
    const { connector, listener } = await transfer(lab, 'b1', 'a1', 4096, ['--transport', 'udp']);
    assert.deepEqual([connector.technique, listener.technique], ['udp-birthday', 'udp-birthday'], JSON.stringify({ connector, listener }));
    const sentByHard = await hard();
    const sentByEasy = await easy();
    t.diagnostic(`hard side: ${sentByHard.packets} datagrams to ${sentByHard.ports} ports; easy side: ${sentByEasy.packets} datagrams to ${sentByEasy.ports} ports`);
    const hardBudget = HARD_SOCKETS * (1 + HARD_RESEND_MS.length);
    // The counting works: the hard side's sockets all sent (their first round leaves at once).
    assert.ok(sentByHard.packets >= HARD_SOCKETS, `hard side: only ${sentByHard.packets} datagrams counted`);
    assert.ok(sentByHard.packets <= hardBudget + OTHER_TRAFFIC, `hard side sent ${sentByHard.packets} datagrams, budget ${hardBudget} + ${OTHER_TRAFFIC}`);
    assert.ok(sentByHard.ports <= 2, `hard side: ${sentByHard.ports} destination ports; it aims at the easy side's one endpoint (and its host candidate's port)`);
    assert.ok(sentByEasy.ports <= SPRAY_PROBES + 2, `easy side probed ${sentByEasy.ports} ports, budget ${SPRAY_PROBES}`);
    assert.ok(sentByEasy.packets <= SPRAY_PROBES + OTHER_TRAFFIC, `easy side sent ${sentByEasy.packets} datagrams, budget ${SPRAY_PROBES} + ${OTHER_TRAFFIC}`);
  });
});
