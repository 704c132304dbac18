import assert from 'node:assert/strict';
import { natTruth, type Lab } from '../../src/lab/index.js';
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

  const truth = natTruth(router.kind);
  const label = `check behind ${router.kind}: ${result.stdout}`;
  assert.equal(report.rfc3489, truth.rfc3489, label);
  // Without UDP, a UDP check cannot tell whether the router translates.
  const udp = truth.mapping !== null;
  assert.equal(report.natted, udp ? truth.natted : null, label);
  assert.equal(report.mapping, truth.mapping, label);
  assert.equal(report.filtering, truth.filtering, label);
  assert.equal(report.portAllocation, truth.portAllocation, label);
  if (truth.portAllocation === 'sequential') assert.equal(report.portDelta, 1, label);
  assert.equal(report.hairpin, udp && truth.natted ? expected.hairpin : null, label);
  assert.equal(report.otherAddress, udp ? expected.otherAddress : null, label);
  if (udp) {
    const mapped = String(report.mappedAddress);
    assert.equal(mapped.slice(0, mapped.lastIndexOf(':')), truth.natted ? router.wanAddress : host.addresses[0], label);
  }
  return report;
}
