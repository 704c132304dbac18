import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { checkNat } from '../../src/nat/check.js';
import { runUdpPunch } from '../../src/sim/punch-scenario.js';
import { createSimLab, startSimStunServer } from '../../src/sim/topology.js';

/** Nothing a sim run does reaches a real socket: every datagram stays in the model. */

test('a check and a punch in the sim open no real UDP socket', async () => {
  const real = dgram.createSocket;
  let opened = 0;
  dgram.createSocket = ((...args: Parameters<typeof real>) => {
    opened++;
    return real(...args);
  }) as typeof real;
  try {
    const lab = createSimLab({ a: { kind: 'restricted-cone', hairpin: true } });
    const server = await startSimStunServer(lab);
    await lab.clock.run(checkNat({
      server: { family: 4, address: '198.51.100.10', port: 3478 }, createSocket: lab.socketFactory('a1'), clock: lab.clock,
      interfaceAddresses: () => lab.hosts.a1!.interfaceAddresses(), lifetime: { maxSeconds: 4 },
    }));
    await lab.clock.run(server.close());
    assert.equal((await runUdpPunch({ a: 'full-cone', b: 'symmetric-seq', rttMs: 40 })).connected, true);
  } finally {
    dgram.createSocket = real;
  }
  assert.equal(opened, 0);
});
