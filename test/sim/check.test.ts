import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NAT_KINDS, natTruth } from '../../src/lab/nat-kind.js';
import { SERVER_ADDRESSES } from '../../src/lab/topology.js';
import { checkNat, type NatReport } from '../../src/nat/check.js';
import { assertReportMatchesTruth } from '../support/nat-report.js';
import { createSimLab, startSimStunServer, STUN_PORT, type SimLab, type SimRouterOptions } from '../../src/sim/topology.js';

/**
 * `natpunch check`'s logic (src/nat/check.ts: RFC 5780 §4.3–4.5, the RFC 3489 class, the
 * port-allocation pattern) behind each of the lab's nine NAT kinds in the sim, held to exactly
 * what test/lab/check.test.ts holds the real lab to. The lab tries each kind with one hairpin
 * setting; here every kind gets both.
 */

async function checkIn(lab: SimLab, options: { lifetimeMax?: number } = {}): Promise<NatReport> {
  const server = await startSimStunServer(lab);
  try {
    return await lab.clock.run(checkNat({
      server: { family: 4, address: SERVER_ADDRESSES[0], port: STUN_PORT },
      createSocket: lab.socketFactory('a1'),
      clock: lab.clock,
      interfaceAddresses: () => lab.hosts.a1!.interfaceAddresses(),
      ...(options.lifetimeMax !== undefined ? { lifetime: { maxSeconds: options.lifetimeMax } } : {}),
    }));
  } finally {
    await lab.clock.run(server.close());
  }
}

for (const kind of NAT_KINDS) {
  for (const hairpin of [true, false]) {
    test(`check reports ${kind} (hairpin ${hairpin ? 'on' : 'off'}) as the lab builds it`, async () => {
      const lab = createSimLab({ a: { kind, hairpin } });
      const report = await checkIn(lab);
      assertReportMatchesTruth(report, kind, {
        hairpin, otherAddress: `${SERVER_ADDRESSES[1]}:3479`, publicAddress: lab.routers.a!.wanAddress!, hostAddress: lab.hosts.a1!.addresses[0]!,
      });
    });
  }
}

test('check classifies the same at 200 ms RTT with 20 ms of jitter', async () => {
  const wan = { latencyMs: 100, jitterMs: 20 };
  for (const kind of ['restricted-cone', 'symmetric-seq'] as const) {
    const lab = createSimLab({ a: { kind, wan } as SimRouterOptions });
    const report = await checkIn(lab);
    const truth = natTruth(kind);
    assert.deepEqual([report.mapping, report.filtering, report.rfc3489, report.portAllocation],
      [truth.mapping, truth.filtering, truth.rfc3489, truth.portAllocation], JSON.stringify(report));
    assert.ok(report.rttMs! >= 200 && report.rttMs! < 240, `rtt ${report.rttMs}`);
  }
});

test('check --lifetime measures the mapping lifetime the router was given, as in the lab', async () => {
  // test/lab/check.test.ts: idles of 2, 4 and 8 s against a 5 s timeout keep the first two and lose the third.
  const lab = createSimLab({ a: { kind: 'port-restricted', udpTimeoutSeconds: 5 } });
  const started = performance.now();
  const report = await checkIn(lab, { lifetimeMax: 8 });
  assert.deepEqual(report.lifetime, { aliveSeconds: 4, expiredSeconds: 8 });
  assert.ok(performance.now() - started < 5_000, 'seconds of idling take no wall time');
});
