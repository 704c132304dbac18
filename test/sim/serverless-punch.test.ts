import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSimLab, startSimStunServer } from '../../src/sim/index.js';
import { openPeer, routerOptions, type SimPeer } from '../../src/sim/punch-scenario.js';
import type { NatKind } from '../../src/lab/nat-kind.js';
import { RoleProbe } from '../../src/punch/role-probe.js';
import { UdpCheckSession, type PunchResult } from '../../src/punch/udp-checks.js';
import { SERVERLESS_CHECK_KEY } from '../../src/peer/serverless.js';
import type { TransportAddress } from '../../src/wire/index.js';

/**
 * The punching half of `natpunch punch` (src/peer/serverless.ts) in the sim: each side knows only
 * the other's server-reflexive address (what `natpunch check` would have told the other user),
 * agrees on roles by tie-breaker (punch/role-probe.ts), then runs the checks to that one address.
 * The second side may start well after the first; a symmetric NAT defeats it (its mapping toward
 * the peer is not the one `check` saw), which decision 013 documents.
 */
async function serverless(a: NatKind, b: NatKind, secondStartsAfterMs = 0): Promise<{ results: (PunchResult | Error)[]; peers: SimPeer[] }> {
  const lab = createSimLab({ a: routerOptions(a, 40), b: routerOptions(b, 40), seed: 7 });
  const { clock } = lab;
  const server = await startSimStunServer(lab);
  const peers = await clock.run(Promise.all([openPeer(lab, 'a1'), openPeer(lab, 'b1')]));
  const run = async (self: SimPeer, remote: TransportAddress, delayMs: number): Promise<PunchResult | Error> => {
    if (delayMs) await new Promise<void>((resolve) => clock.setTimeout(resolve, delayMs));
    const sameIp = (from: TransportAddress): boolean => from.address === remote.address;
    const probe = new RoleProbe({ mux: self.mux, username: 'natpunch punch/1 role', key: SERVERLESS_CHECK_KEY, remote, accept: sameIp, timeoutMs: 30_000, clock });
    try {
      const { role } = await probe.result;
      const checks = new UdpCheckSession({
        mux: self.mux, session: 'sim-serverless', key: SERVERLESS_CHECK_KEY, role, clock, timeoutMs: 10_000,
        remoteCandidates: [{ type: 'srflx', address: remote }], acceptPeerReflexive: sameIp,
      });
      try {
        return await checks.result;
      } finally {
        // Answer the other side's last checks a little longer, as the connection would.
        await new Promise<void>((resolve) => clock.setTimeout(resolve, 1_000));
        checks.close();
      }
    } catch (error) {
      return error as Error;
    } finally {
      probe.close();
    }
  };
  const [pa, pb] = peers as [SimPeer, SimPeer];
  const results = await clock.run(Promise.all([run(pa, pb.srflx!, 0), run(pb, pa.srflx!, secondStartsAfterMs)]));
  for (const peer of peers) { peer.mux.close(); peer.socket.close(); }
  await clock.run(server.close());
  return { results, peers };
}

for (const [a, b] of [['port-restricted', 'port-restricted'], ['full-cone', 'port-restricted'], ['restricted-cone', 'eim-random-port']] as const) {
  test(`${a} × ${b}: both sides agree on roles and punch to each other's public address`, async () => {
    const { results, peers } = await serverless(a, b);
    const [ra, rb] = results;
    assert.ok(!(ra instanceof Error), String(ra));
    assert.ok(!(rb instanceof Error), String(rb));
    assert.deepEqual((ra as PunchResult).remote, peers[1]!.srflx);
    assert.deepEqual((rb as PunchResult).remote, peers[0]!.srflx);
  });
}

test('the second side starting 20 s after the first still connects (within the 30 s budget)', async () => {
  const { results } = await serverless('port-restricted', 'port-restricted', 20_000);
  for (const r of results) assert.ok(!(r instanceof Error), String(r));
});

test('a symmetric NAT on one side: no packet gets through either NAT, each side gives up with ERR_UNREACHABLE', async () => {
  const { results } = await serverless('symmetric-random', 'port-restricted');
  for (const r of results) {
    assert.ok(r instanceof Error);
    assert.equal((r as Error & { code?: string }).code, "ERR_UNREACHABLE", (r as Error).message);
  }
});
