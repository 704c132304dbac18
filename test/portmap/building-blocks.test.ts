import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PortMapDecodeError, PortMapError } from '../../src/errors.js';
import { defaultGateway, parseProcNetRoute } from '../../src/portmap/default-gateway.js';
import { EpochTracker } from '../../src/portmap/epoch.js';
import { externalAddressProblem } from '../../src/portmap/external-address.js';
import { natPmpSchedule, pcpSchedule } from '../../src/portmap/retransmission.js';

/** /proc/net/route as a lab LAN host has it: a default route via 10.0.1.1 and the LAN itself. */
const ROUTE = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0101000A\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t0001000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
wlan0\t00000000\t0102A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
`;

test('/proc/net/route: default routes with the gateway flag, little-endian hex, lowest metric first', async () => {
  assert.deepEqual(parseProcNetRoute(ROUTE), [
    { interface: 'eth0', gateway: '10.0.1.1', metric: 0 },
    { interface: 'wlan0', gateway: '192.168.2.1', metric: 600 },
  ]);
  assert.equal(await defaultGateway(async () => ROUTE), '10.0.1.1');
  assert.throws(() => parseProcNetRoute('Iface\tGateway\n'), /no "Destination" column/);
  assert.throws(() => parseProcNetRoute(ROUTE.replace('0101000A', 'nothex!!')), (e: unknown) => e instanceof PortMapDecodeError && /line 2: Gateway "nothex!!"/.test(e.message));
  await assert.rejects(defaultGateway(async () => { throw new Error('ENOENT'); }), (e: unknown) => e instanceof PortMapError && e.reason === 'no-gateway' && /pass the gateway's address/.test(e.message));
});

test('NAT-PMP schedule: 250 ms doubling, 9 sends (RFC 6886 §3.1); a budget cuts it', () => {
  assert.deepEqual(natPmpSchedule(), { sends: [0, 250, 750, 1750, 3750, 7750, 15750, 31750, 63750], deadline: 127750 });
  assert.deepEqual(natPmpSchedule({ budgetMs: 2000 }), { sends: [0, 250, 750, 1750], deadline: 2000 });
  assert.throws(() => natPmpSchedule({ tries: 0 }), /integer tries >= 1/);
});

test('PCP schedule: IRT 3 s ±10%, doubling (RFC 6887 §8.1.1), until the budget', () => {
  const mid = pcpSchedule({ random: () => 0.5, budgetMs: 30_000 });
  assert.deepEqual(mid, { sends: [0, 3000, 9000, 21000], deadline: 30_000 });
  const low = pcpSchedule({ random: () => 0, budgetMs: 10_000 });
  assert.equal(low.sends[1], 2700);
});

test('epoch: consistent with elapsed time is valid; a gateway that went back, or far behind, lost its mappings (RFC 6887 §8.5)', () => {
  const epoch = new EpochTracker();
  assert.equal(epoch.observe(1000, 0), true);
  assert.equal(epoch.observe(1060, 60_000), true);
  assert.equal(epoch.observe(1061, 61_500), true, 'within 2 s of slack');
  assert.equal(epoch.observe(5, 62_000), false, 'went backwards: rebooted');
  assert.equal(epoch.observe(10, 3_662_000), false, 'one hour on the client, 5 s on the gateway');
  assert.equal(epoch.observe(3610, 7_262_000), true);
});

test('double NAT detection: private, shared (CGNAT), loopback and unspecified addresses are no external address', () => {
  const table: [string, ReturnType<typeof externalAddressProblem>][] = [
    ['203.0.113.7', undefined], ['198.51.100.1', undefined], ['8.8.8.8', undefined], ['2001:db8::1', undefined],
    ['10.1.2.3', 'not-public'], ['172.31.0.1', 'not-public'], ['192.168.1.1', 'not-public'], ['100.64.0.1', 'not-public'],
    ['127.0.0.1', 'not-public'], ['169.254.1.1', 'not-public'], ['fd00::1', 'not-public'],
    ['0.0.0.0', 'unspecified'], ['nonsense', 'not-an-address'],
  ];
  for (const [address, problem] of table) assert.equal(externalAddressProblem(address), problem, address);
});
