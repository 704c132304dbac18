import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withLab, natTruth, type NatKind, type Lab } from '../../src/lab/index.js';
import { natpunch, waitForLine } from '../support/cli.js';
import { skipUnlessLab } from '../support/lab.js';

/**
 * Acceptance: `natpunch check --json` behind every NAT kind, against `natpunch serve` with an
 * alternate address in the lab's server host, reports what the lab built. Two kinds per lab
 * (routers a and b) keep the number of topologies down; hairpin is on for router a.
 */
const pairs: [NatKind, NatKind][] = [
  ['full-cone', 'restricted-cone'],
  ['port-restricted', 'eim-random-port'],
  ['symmetric-seq', 'symmetric-random'],
  ['symmetric-firewall', 'open'],
  ['eim-random-port', 'udp-blocked'],
];

async function checkFrom(lab: Lab, host: string): Promise<Record<string, unknown>> {
  const result = await lab.hosts[host]!.exec(natpunch('check', '--stun', '198.51.100.10:3478', '--json'), { timeoutMs: 60_000 });
  assert.equal(result.code, 0, `check in ${host} failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

for (const [kindA, kindB] of pairs) {
  test(`check reports ${kindA} (hairpin on) and ${kindB} (hairpin off) as built`, { timeout: 180_000 }, async (t) => {
    if (skipUnlessLab(t)) return;
    await withLab({ a: { kind: kindA, hairpin: true }, b: { kind: kindB, hairpin: false } }, async (lab) => {
      const serve = lab.server.spawn(natpunch('serve', '--address', '198.51.100.10', '--alt-address', '198.51.100.11', '--no-relay'));
      await waitForLine(serve, /ready/);
      const reports = await Promise.all([checkFrom(lab, 'a1'), checkFrom(lab, 'b1')]);
      for (const [kind, report, hairpin] of [[kindA, reports[0]!, true], [kindB, reports[1]!, false]] as const) {
        const truth = natTruth(kind);
        const label = `${kind}: ${JSON.stringify(report)}`;
        assert.equal(report.rfc3489, truth.rfc3489, label);
        assert.equal(report.natted, kind === 'udp-blocked' ? null : truth.natted, label);
        assert.equal(report.mapping, truth.mapping, label);
        assert.equal(report.filtering, truth.filtering, label);
        assert.equal(report.portAllocation, truth.portAllocation, label);
        if (truth.portAllocation === 'sequential') assert.equal(report.portDelta, 1, label);
        // Hairpinning is measured only through a NAT that passes UDP.
        const measurable = truth.natted && truth.rfc3489 !== 'udp-blocked';
        assert.equal(report.hairpin, measurable ? hairpin : null, label);
        if (measurable) {
          const wan = lab.routers[kind === kindA ? 'a' : 'b']!.wanAddress;
          assert.match(String(report.mappedAddress), new RegExp(`^${wan.replace(/\./g, '\\.')}:\\d+$`), label);
        }
      }
    });
  });
}

test('check --lifetime measures the UDP mapping lifetime the router was given', { timeout: 120_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'port-restricted', udpTimeoutSeconds: 5 } }, async (lab) => {
    const serve = lab.server.spawn(natpunch('serve', '--address', '198.51.100.10', '--alt-address', '198.51.100.11', '--no-relay'));
    await waitForLine(serve, /ready/);
    const result = await lab.hosts.a1!.exec(natpunch('check', '--stun', '198.51.100.10', '--json', '--lifetime-max', '8'), { timeoutMs: 60_000 });
    assert.equal(result.code, 0, result.stderr);
    const { lifetime } = JSON.parse(result.stdout) as { lifetime: { aliveSeconds: number | null; expiredSeconds: number | null } };
    // Idles of 2, 4 and 8 s: a 5 s conntrack timeout keeps the first two and loses the third.
    assert.deepEqual(lifetime, { aliveSeconds: 4, expiredSeconds: 8 });
  });
});
