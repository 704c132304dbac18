import assert from 'node:assert/strict';
import { natTruth, type Lab, type NatKind } from '../../src/lab/index.js';
import { natpunch } from './cli.js';

/**
 * Run `natpunch check --stun SERVER --json` on the first client behind `routerName` and assert
 * the report says what the lab built (`natTruth`): classification, port allocation, the public
 * address, hairpinning as the router was configured, and the server's RFC 5780 alternate endpoint.
 */
export async function assertCheckMatchesLab(lab: Lab, routerName: string, server: string, expected: { hairpin: boolean; otherAddress: string }): Promise<Record<string, unknown>> {
  const router = lab.routers[routerName]!;
  const host = lab.hosts[`${routerName}1`]!;
  const result = await host.exec(natpunch('check', '--stun', server, '--json'), { timeoutMs: 60_000 });
  assert.equal(result.code, 0, `natpunch check in ${host.name} failed (${result.code ?? result.signal}): ${result.stderr}`);
  const report = JSON.parse(result.stdout) as Record<string, unknown>;

  assertReportMatchesTruth(report, router.kind, {
    ...expected, label: `check behind ${router.kind}: ${result.stdout}`, publicAddress: router.wanAddress, hostAddress: host.addresses[0]!,
  });
  return report;
}

/**
 * Assert a check report (the JSON of `natpunch check`, or checkNat's NatReport) says what a
 * router of `kind` is built to do (`natTruth`), for a client at `hostAddress` behind a router
 * whose public address is `publicAddress`. The lab and the sim (test/sim/check.test.ts) share it.
 */
export function assertReportMatchesTruth(report: Record<string, unknown> | object, kind: NatKind, expected: {
  hairpin: boolean; otherAddress: string; publicAddress: string; hostAddress: string; label?: string;
}): void {
  const r = report as Record<string, unknown>;
  const truth = natTruth(kind);
  const label = expected.label ?? `check behind ${kind}: ${JSON.stringify(report)}`;
  assert.equal(r.rfc3489, truth.rfc3489, label);
  // Without UDP, a UDP check cannot tell whether the router translates.
  const udp = truth.mapping !== null;
  assert.equal(r.natted, udp ? truth.natted : null, label);
  assert.equal(r.mapping, truth.mapping, label);
  assert.equal(r.filtering, truth.filtering, label);
  assert.equal(r.portAllocation, truth.portAllocation, label);
  if (truth.portAllocation === 'sequential') assert.equal(r.portDelta, 1, label);
  assert.equal(r.hairpin, udp && truth.natted ? expected.hairpin : null, label);
  assert.equal(r.otherAddress, udp ? expected.otherAddress : null, label);
  if (udp) {
    const mapped = String(r.mappedAddress);
    assert.equal(mapped.slice(0, mapped.lastIndexOf(':')), truth.natted ? expected.publicAddress : expected.hostAddress, label);
  }
}
