import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { runConnect } from '../../src/sim/connect-scenario.js';
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

test('a whole connect in the sim (UDP, TCP punching, reversal, priming, birthday probing) opens no real socket of either kind', async () => {
  const real = { createSocket: dgram.createSocket, connect: net.connect, createServer: net.createServer };
  let opened = 0;
  dgram.createSocket = ((...args: Parameters<typeof real.createSocket>) => { opened++; return real.createSocket(...args); }) as typeof real.createSocket;
  net.connect = ((...args: Parameters<typeof real.connect>) => { opened++; return real.connect(...args); }) as typeof real.connect;
  net.createServer = ((...args: Parameters<typeof real.createServer>) => { opened++; return real.createServer(...args); }) as typeof real.createServer;
  try {
    const rst = { kind: 'port-restricted', tcpUnsolicited: 'rst' } as const;
    const primed = await runConnect({ a: rst, b: rst, transport: 'tcp', rttMs: 0, startSkewMs: 3 });
    assert.equal('technique' in primed.connector && primed.connector.technique, 'tcp-ttl-primed');
    const reversal = await runConnect({ a: 'udp-blocked', b: 'open', rttMs: 40 });
    assert.equal('technique' in reversal.connector && reversal.connector.technique, 'tcp-reversal');
    // The hard side's 256 sockets come from the sim too (birthdaySockets' createSocket).
    const birthday = await runConnect({ a: 'symmetric-random', b: 'port-restricted', transport: 'udp', rttMs: 40 });
    assert.equal('technique' in birthday.connector && birthday.connector.technique, 'udp-birthday');
  } finally {
    Object.assign(dgram, { createSocket: real.createSocket });
    Object.assign(net, { connect: real.connect, createServer: real.createServer });
  }
  assert.equal(opened, 0);
});
