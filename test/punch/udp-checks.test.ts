import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { UdpMux } from '../../src/punch/udp-mux.js';
import { UdpCheckSession } from '../../src/punch/udp-checks.js';
import { candidateTypeOf } from '../../src/punch/candidate.js';
import type { TransportAddress } from '../../src/wire/index.js';

async function endpoint(): Promise<{ socket: dgram.Socket; mux: UdpMux; address: TransportAddress }> {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return { socket, mux: new UdpMux(socket), address: { family: 4, address: '127.0.0.1', port: socket.address().port } };
}

test('two sessions find each other and agree on the nominated pair', async () => {
  const a = await endpoint();
  const b = await endpoint();
  const dead = await endpoint(); // a candidate that never answers: must not be chosen
  const key = randomBytes(32);
  const startAt = Date.now() + 20;
  const sa = new UdpCheckSession({ mux: a.mux, session: 's1', key, role: 'controlling', startAt,
    remoteCandidates: [{ type: 'srflx', address: dead.address }, { type: 'host', address: b.address }] });
  const sb = new UdpCheckSession({ mux: b.mux, session: 's1', key, role: 'controlled', startAt,
    remoteCandidates: [{ type: 'host', address: a.address }] });
  const [ra, rb] = await Promise.all([sa.result, sb.result]);
  assert.deepEqual(ra.remote, b.address);
  assert.deepEqual(rb.remote, a.address);
  assert.ok(ra.checksSent < 60, `bounded: ${ra.checksSent} checks`);
  sa.close(); sb.close();
  for (const e of [a, b, dead]) e.socket.close();
});

test('checks with the wrong key are not answered and punching times out with a clear error', async () => {
  const a = await endpoint();
  const b = await endpoint();
  const sa = new UdpCheckSession({ mux: a.mux, session: 's2', key: randomBytes(32), role: 'controlling', timeoutMs: 600,
    remoteCandidates: [{ type: 'host', address: b.address }] });
  const sb = new UdpCheckSession({ mux: b.mux, session: 's2', key: randomBytes(32), role: 'controlled', timeoutMs: 600,
    remoteCandidates: [{ type: 'host', address: a.address }] });
  await assert.rejects(sa.result, (e: unknown) => (e as { code?: string }).code === 'ERR_TRANSPORT' && /no working path/.test(String(e)));
  await assert.rejects(sb.result);
  sa.close(); sb.close();
  a.socket.close(); b.socket.close();
});

test('candidate types come from the address bytes', () => {
  assert.equal(candidateTypeOf({ family: 4, address: '10.1.2.3', port: 1 }), 'host');
  assert.equal(candidateTypeOf({ family: 4, address: '192.168.1.1', port: 1 }), 'host');
  assert.equal(candidateTypeOf({ family: 4, address: '172.20.0.1', port: 1 }), 'host');
  assert.equal(candidateTypeOf({ family: 4, address: '203.0.113.5', port: 1 }), 'srflx');
  assert.equal(candidateTypeOf({ family: 4, address: '100.64.0.1', port: 1 }), 'srflx');
});
