import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyPortAllocation, rfc3489Class } from '../../src/nat/behaviour.js';

test('RFC 3489 classes follow from mapping and filtering', () => {
  const table: [boolean, Parameters<typeof rfc3489Class>[1], Parameters<typeof rfc3489Class>[2], string | null][] = [
    [false, 'endpoint-independent', 'endpoint-independent', 'open-internet'],
    [false, 'endpoint-independent', 'address-and-port-dependent', 'symmetric-udp-firewall'],
    [true, 'endpoint-independent', 'endpoint-independent', 'full-cone'],
    [true, 'endpoint-independent', 'address-dependent', 'restricted-cone'],
    [true, 'endpoint-independent', 'address-and-port-dependent', 'port-restricted-cone'],
    [true, 'address-dependent', 'address-and-port-dependent', 'symmetric'],
    [true, 'address-and-port-dependent', 'endpoint-independent', 'symmetric'],
    [true, null, null, null],
  ];
  for (const [natted, mapping, filtering, expected] of table) assert.equal(rfc3489Class(natted, mapping, filtering), expected, `${natted} ${mapping} ${filtering}`);
});

test('port allocation: preserving, sequential with its delta, random', () => {
  assert.deepEqual(classifyPortAllocation([{ local: 5000, mapped: 5000 }, { local: 6000, mapped: 6000 }, { local: 7000, mapped: 7000 }]), { allocation: 'preserving' });
  const seq = [40010, 40011, 40012, 40013, 40014, 40015].map((mapped, i) => ({ local: 30000 + i * 7, mapped }));
  assert.deepEqual(classifyPortAllocation(seq), { allocation: 'sequential', delta: 1 });
  const interleaved = [40010, 40012, 40014, 40017, 40019, 40021].map((mapped, i) => ({ local: 30000 + i, mapped }));
  assert.deepEqual(classifyPortAllocation(interleaved), { allocation: 'sequential', delta: 2 });
  const random = [51234, 1290, 33333, 60001, 2048, 44100].map((mapped, i) => ({ local: 30000 + i, mapped }));
  assert.deepEqual(classifyPortAllocation(random), { allocation: 'random' });
  assert.equal(classifyPortAllocation([{ local: 1, mapped: 1 }]), null);
});
