import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { UdpMux } from '../../src/punch/udp-mux.js';
import { RoleProbe } from '../../src/punch/role-probe.js';
import { AttrType, MessageClass, Method, encodeMessage, username, type TransportAddress } from '../../src/wire/index.js';
import { once } from '../support/wait.js';

const key = randomBytes(32);
const USER = 'natpunch punch/1 role';

interface Endpoint { socket: dgram.Socket; mux: UdpMux; address: TransportAddress; probes: RoleProbe[] }

/** A UDP socket on 127.0.0.1 with its mux; its probes, then the socket, closed after the test. */
async function endpoint(t: TestContext): Promise<Endpoint> {
  const socket = dgram.createSocket('udp4');
  const probes: RoleProbe[] = [];
  t.after(() => {
    for (const probe of probes) probe.close();
    socket.close();
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return { socket, mux: new UdpMux(socket), address: { family: 4, address: '127.0.0.1', port: socket.address().port }, probes };
}

function probe(local: Endpoint, remote: TransportAddress, tieBreaker: Uint8Array, timeoutMs = 5_000): RoleProbe {
  const p = new RoleProbe({ mux: local.mux, username: USER, key, remote, tieBreaker, timeoutMs });
  local.probes.push(p);
  return p;
}

test('two sides agree on opposite roles and the same pair of tie-breakers, the larger controlling', async (t) => {
  const a = await endpoint(t);
  const b = await endpoint(t);
  const low = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  const high = Uint8Array.from([9, 2, 3, 4, 5, 6, 7, 8]);
  const [ra, rb] = await Promise.all([probe(a, b.address, low).result, probe(b, a.address, high).result]);
  assert.equal(ra.role, 'controlled');
  assert.equal(rb.role, 'controlling');
  assert.deepEqual(ra.tieBreakers, [high, low]);
  assert.deepEqual(rb.tieBreakers, [high, low]);
});

test('a side started later still agrees: the first keeps probing until it hears the other', async (t) => {
  const a = await endpoint(t);
  const b = await endpoint(t);
  const first = probe(a, b.address, randomBytes(8));
  await new Promise((resolve) => setTimeout(resolve, 450));
  const second = probe(b, a.address, randomBytes(8));
  const [ra, rb] = await Promise.all([first.result, second.result]);
  assert.notEqual(ra.role, rb.role);
  assert.deepEqual(ra.tieBreakers, rb.tieBreakers);
  assert.ok(ra.probesSent >= 2, `probes sent: ${ra.probesSent}`);
});

test('nothing answering: ERR_UNREACHABLE naming the address after timeoutMs', async (t) => {
  const a = await endpoint(t);
  const silent = await endpoint(t);
  const started = performance.now();
  await assert.rejects(probe(a, silent.address, randomBytes(8), 500).result, (error: Error & { code?: string }) => {
    assert.equal(error.code, 'ERR_UNREACHABLE');
    assert.equal(error.message, `no answer from 127.0.0.1:${silent.address.port} within 500 ms`);
    return true;
  });
  assert.ok(performance.now() - started < 2_000);
});

test('a verified probe from an address not admitted is neither answered nor learnt from', async (t) => {
  const a = await endpoint(t);
  const b = await endpoint(t);
  const stranger = await endpoint(t);
  const p = probe(a, b.address, randomBytes(8), 1_000);
  let answered = false;
  stranger.socket.on('message', () => { answered = true; });
  stranger.socket.send(encodeMessage({
    method: Method.Binding, messageClass: MessageClass.Request, transactionId: randomBytes(12),
    attributes: [{ type: AttrType.Username, value: username.encode(USER) }, { type: AttrType.IceControlling, value: randomBytes(8) }],
  }, { integrity: { key, algorithm: 'sha256' }, fingerprint: true }), a.address.port, '127.0.0.1');
  await assert.rejects(p.result, { code: 'ERR_UNREACHABLE' });
  assert.equal(answered, false);
});
