import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from '../support/wait.js';
import { NatpunchError, AbortedError } from '../../src/errors.js';
import { StunServer } from '../../src/stun/server.js';
import { TcpMapping } from '../../src/peer/tcp-mapping.js';
import { tcpSimultaneousOpen } from '../../src/punch/tcp-simultaneous-open.js';
import { runInPrivateLoopback, skipUnlessNetns } from '../support/netns-loopback.js';

/** A loopback port nobody listens on: every SYN to it is answered with RST. */
async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('the kept STUN/TCP connection learns the TCP mapping of its port L and stays open', { timeout: 30_000 }, async () => {
  const stun = await StunServer.listen({ address: '127.0.0.1', port: 0 });
  const mapping = await TcpMapping.learn(stun.addresses[0]!);
  try {
    assert.equal(mapping.mapped.address, '127.0.0.1');
    assert.equal(mapping.mapped.port, mapping.localPort, 'no NAT on loopback: the mapping is L itself');
    await mapping.keepalive();
    assert.equal(mapping.alive, true);
  } finally {
    mapping.close();
    await stun.close();
  }
});

test('connects refused on every candidate are retried inside the budget, then punching fails with ERR_TRANSPORT', { timeout: 30_000 }, async () => {
  const stun = await StunServer.listen({ address: '127.0.0.1', port: 0 });
  const mapping = await TcpMapping.learn(stun.addresses[0]!);
  try {
    const port = await closedPort();
    const started = Date.now();
    let attempts = 0;
    await assert.rejects(
      tcpSimultaneousOpen({ localPort: mapping.localPort, remoteCandidates: [{ family: 4, address: '127.0.0.1', port }], role: 'controlling', budgetMs: 1_000 }),
      (error: unknown) => {
        assert.ok(error instanceof NatpunchError);
        assert.equal(error.code, 'ERR_TRANSPORT');
        assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
        attempts = Number(/after (\d+) connects/.exec(error.message)?.[1]);
        return true;
      },
    );
    assert.ok(attempts > 1, `retried (${attempts} connects)`);
    assert.ok(Date.now() - started >= 1_000, 'gave up only at the end of the budget');
    assert.equal(mapping.alive, true, 'the kept connection on L survives the punching connects');
  } finally {
    mapping.close();
    await stun.close();
  }
});

test('punching without the other peer\'s TCP candidates fails at once with ERR_TRANSPORT', async () => {
  await assert.rejects(tcpSimultaneousOpen({ localPort: 1, remoteCandidates: [], role: 'controlled' }), { name: 'NatpunchError', code: 'ERR_TRANSPORT' });
});

test('an aborted punch rejects with ERR_ABORTED', async () => {
  const controller = new AbortController();
  const punching = tcpSimultaneousOpen({
    localPort: 0, remoteCandidates: [{ family: 4, address: '127.0.0.1', port: await closedPort() }], role: 'controlling', startAt: Date.now() + 60_000, signal: controller.signal,
  });
  controller.abort();
  await assert.rejects(punching, (error: unknown) => error instanceof AbortedError && error.code === 'ERR_ABORTED');
});

test('two peers with kept STUN/TCP connections connect from L to L at the same time: one socket each, data flows', { timeout: 90_000 }, async (t) => {
  if (skipUnlessNetns(t)) return;
  const result = await runInPrivateLoopback('punch');
  assert.equal(result['error'], undefined, String(result['error']));
  const [la, lb] = result['localPorts'] as number[];
  // Each side's one socket runs from its own L to the other's L: the kept connections' ports.
  assert.deepEqual(result['sockets'], [[la, lb], [lb, la]]);
  assert.deepEqual(result['alive'], [true, true], 'the kept connections are still open');
  assert.equal(result['first'], 'hello');
  assert.equal(result['aToB'], true);
  assert.equal(result['bToA'], true);
});
