import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from '../support/wait.js';
import { StunServer } from '../../src/stun/server.js';
import { type LifetimeProgress, lifetimeIdles, measureMappingLifetime } from '../../src/nat/lifetime.js';
import {
  type TransportAddress, AttrType, MessageClass, Method, decodeMessage, encodeMessage, getAttribute, responsePort, xorMappedAddress,
} from '../../src/wire/index.js';

/**
 * A STUN server in front of a pretend NAT whose mappings live `lifetimeMs` after their last
 * outbound packet: a Binding with RESPONSE-PORT is answered to that port only while the port's
 * "mapping" lives. On loopback there is no NAT, so this is how the bracket logic is tested without
 * root; the kernel-NAT version is test/lab/check.test.ts and test/lab/keepalive.test.ts.
 */
async function fakeNatServer(lifetimeMs: number): Promise<{ address: TransportAddress; close(): Promise<void> }> {
  const socket = dgram.createSocket('udp4');
  const lastSent = new Map<number, number>();
  socket.on('message', (data, from) => {
    const request = decodeMessage(data);
    lastSent.set(from.port, performance.now());
    const asked = getAttribute(request, AttrType.ResponsePort);
    const port = asked ? responsePort.decode(asked) : from.port;
    const last = lastSent.get(port);
    if (last === undefined || performance.now() - last > lifetimeMs) return;
    const mapped = { family: 4 as const, address: from.address, port };
    socket.send(encodeMessage({
      method: Method.Binding, messageClass: MessageClass.SuccessResponse, transactionId: request.transactionId,
      attributes: [{ type: AttrType.XorMappedAddress, value: xorMappedAddress.encode(mapped, request.transactionId) }],
    }), port, from.address);
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return {
    address: { family: 4, address: '127.0.0.1', port: socket.address().port },
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}

const fast = { rto: 50, rc: 3, rm: 4 };

test('probes idle times 2, 4, 8, … up to the maximum', () => {
  assert.deepEqual(lifetimeIdles(120), [2, 4, 8, 16, 32, 64]);
  assert.deepEqual(lifetimeIdles(4), [2, 4]);
  assert.deepEqual(lifetimeIdles(1), []);
});

test('without a NAT every mapping survives: alive up to the maximum, none expired, reported as it goes', async () => {
  const server = await StunServer.listen({ address: '127.0.0.1', port: 0 });
  try {
    const progress: LifetimeProgress[] = [];
    const result = await measureMappingLifetime({ server: server.addresses[0]!, maxSeconds: 4, silenceRetransmission: fast, onProgress: (p) => progress.push(p) });
    assert.deepEqual(result, { aliveSeconds: 4, expiredSeconds: null });
    assert.deepEqual(progress, [{ aliveSeconds: 2, expiredSeconds: null, final: false }, { aliveSeconds: 4, expiredSeconds: null, final: true }]);
  } finally {
    await server.close();
  }
});

test('a mapping that dies after 3 s idle: alive 2, expired 4, and the longer probes are cancelled at once', async () => {
  const server = await fakeNatServer(3000);
  try {
    const progress: LifetimeProgress[] = [];
    const started = performance.now();
    const result = await measureMappingLifetime({ server: server.address, maxSeconds: 64, silenceRetransmission: fast, onProgress: (p) => progress.push(p) });
    assert.deepEqual(result, { aliveSeconds: 2, expiredSeconds: 4 });
    // 4 s of idling plus the asker's silence, not the 32 s of the longest probe.
    assert.ok(performance.now() - started < 10_000, `took ${performance.now() - started} ms`);
    assert.deepEqual(progress.at(-1), { aliveSeconds: 2, expiredSeconds: 4, final: true });
  } finally {
    await server.close();
  }
});

test('an abort ends the measurement at once with AbortedError and closes its sockets', async () => {
  const server = await StunServer.listen({ address: '127.0.0.1', port: 0 });
  try {
    const controller = new AbortController();
    const measuring = measureMappingLifetime({ server: server.addresses[0]!, maxSeconds: 64, signal: controller.signal });
    setTimeout(() => controller.abort(), 200);
    await assert.rejects(measuring, (error: Error & { code?: string }) => error.code === 'ERR_ABORTED');
  } finally {
    await server.close();
  }
});

test('a server that stops answering is not a mapping that died: the probe counts as unmeasured', async () => {
  const server = await StunServer.listen({ address: '127.0.0.1', port: 0 });
  let closed = false;
  try {
    const progress: LifetimeProgress[] = [];
    const measuring = measureMappingLifetime({
      server: server.addresses[0]!, maxSeconds: 2, retransmission: fast, silenceRetransmission: fast,
      onProgress: (p) => {
        progress.push(p);
      },
    });
    // The holder's Binding is answered at once; the server is gone long before its 2 s idle ends.
    setTimeout(() => {
      closed = true;
      void server.close();
    }, 500);
    assert.deepEqual(await measuring, { aliveSeconds: null, expiredSeconds: null });
    assert.deepEqual(progress, [{ aliveSeconds: null, expiredSeconds: null, final: true }]);
  } finally {
    if (!closed) await server.close();
  }
});
