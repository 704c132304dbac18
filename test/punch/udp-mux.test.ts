import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { DATA_PACKET_TYPE, UdpMux } from '../../src/punch/udp-mux.js';
import { UdpCheckSession } from '../../src/punch/udp-checks.js';
import type { TransportAddress } from '../../src/wire/index.js';

async function bound(type: 'udp4' | 'udp6', address: string): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type, ...(type === 'udp6' ? { ipv6Only: true } : {}) });
  socket.bind(0, address);
  await once(socket, 'listening');
  return socket;
}

function endpoint(socket: dgram.Socket): TransportAddress {
  const a = socket.address();
  return { family: a.family === 'IPv6' ? 6 : 4, address: a.address, port: a.port };
}

test('a mux with an IPv6 socket sends each datagram from the socket of its destination\'s family and hears both', async (t) => {
  const [v4, v6, far4, far6] = await Promise.all([bound('udp4', '127.0.0.1'), bound('udp6', '::1'), bound('udp4', '127.0.0.1'), bound('udp6', '::1')]);
  const mux = new UdpMux(v4, false, v6);
  t.after(() => { mux.close(); for (const s of [v4, v6, far4, far6]) s.close(); });
  assert.equal(mux.hasFamily(4), true);
  assert.equal(mux.hasFamily(6), true);
  assert.equal(new UdpMux(far4, false).hasFamily(6), false, 'an IPv4 socket alone has no IPv6 base');

  const data = Buffer.from([DATA_PACKET_TYPE, 1, 2, 3]);
  const arrivals = [once(far4, 'message'), once(far6, 'message')];
  mux.send(data, endpoint(far4));
  mux.sendBatch([data], endpoint(far6));
  const [[, from4], [, from6]] = (await Promise.all(arrivals)) as [Buffer, dgram.RemoteInfo][];
  assert.equal(from4.port, v4.address().port, 'IPv4 leaves from the IPv4 socket');
  assert.equal(from6.port, v6.address().port, 'IPv6 leaves from the IPv6 socket');

  const heard: string[] = [];
  const both = new Promise<void>((resolve) => mux.onData((_d, from) => { heard.push(`${from.family} ${from.address}`); if (heard.length === 2) resolve(); return true; }));
  far4.send(data, v4.address().port, '127.0.0.1');
  far6.send(data, v6.address().port, '::1');
  await both;
  assert.deepEqual(heard.sort(), ['4 127.0.0.1', '6 ::1']);
});

test('connectivity checks pair only candidates of a family the mux has a socket for (RFC 8445 §6.1.2.2)', async (t) => {
  const v4 = await bound('udp4', '127.0.0.1');
  const mux = new UdpMux(v4, false);
  const session = new UdpCheckSession({
    mux, session: 'AAAAAAAAAAAAAAAAAAAAAA', key: new Uint8Array(32), role: 'controlling', timeoutMs: 50,
    remoteCandidates: [{ type: 'host', address: { family: 6, address: '2001:db8:1::2', port: 9 } }, { type: 'host', address: { family: 4, address: '127.0.0.1', port: 9 } }],
  });
  t.after(() => { session.close(); mux.close(); v4.close(); });
  await assert.rejects(session.result, (error: Error) => /no working path to 127\.0\.0\.1:9 within/.test(error.message));
});
