import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from '../support/wait.js';
import { generateIdentity } from '../../src/identity/index.js';
import { RendezvousClient, RendezvousServer, ReflexiveObserver, dialBackTcp, dialBackUdp } from '../../src/rendezvous/index.js';
import { DEFAULT_DIAL_BACK_TIMEOUT_MS, MIN_DIAL_BACK_TIMEOUT_MS, dialBackTimeout } from '../../src/rendezvous/dial-back.js';
import { StunServer } from '../../src/stun/server.js';
import { StunUdpClient } from '../../src/stun/udp-client.js';
import { UdpMux } from '../../src/punch/udp-mux.js';
import { DialBackResponder } from '../../src/peer/reachability.js';
import { ReversalListener } from '../../src/peer/reversal-listener.js';
import { Resources } from './helpers.js';

const resources = new Resources();
afterEach(() => resources.close());
const TOKEN = 'AAAAAAAAAAAAAAAAAAAAAA';
const OTHER = 'BBBBBBBBBBBBBBBBBBBBBA';

async function peerSocket(): Promise<{ socket: dgram.Socket; mux: UdpMux; responder: DialBackResponder; port: number }> {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  resources.add(socket, (s) => s.close());
  const mux = resources.add(new UdpMux(socket), (m) => m.close());
  const responder = resources.add(new DialBackResponder(mux), (r) => r.close());
  return { socket, mux, responder, port: socket.address().port };
}

test('UDP dial-back: a peer that expects the token answers from its socket; one that does not, or no one, does not', async () => {
  const { responder, port } = await peerSocket();
  const target = { family: 4 as const, address: '127.0.0.1', port };
  responder.expect(TOKEN);
  assert.equal(await dialBackUdp(target, TOKEN, { localAddress: '127.0.0.2', timeoutMs: 500 }), true);
  assert.equal(responder.reachability({ udp: true, tcp: false }).udp, true);
  assert.equal(await dialBackUdp(target, OTHER, { localAddress: '127.0.0.2', timeoutMs: 200 }), false, 'a probe for another registration is not answered');
  const silent = await peerSocket();
  assert.equal(await dialBackUdp({ ...target, port: silent.port }, TOKEN, { localAddress: '127.0.0.2', timeoutMs: 200 }), false);
});

test('TCP dial-back: the reversal listener answers only the expected token; a closed port is unreachable', async () => {
  const { responder } = await peerSocket();
  const listener = resources.add(await ReversalListener.listen(responder, '127.0.0.1'), (l) => l.close());
  const target = { family: 4 as const, address: '127.0.0.1', port: listener.port };
  responder.expect(TOKEN);
  assert.equal(await dialBackTcp(target, OTHER, { localAddress: '127.0.0.2', timeoutMs: 500 }), false);
  assert.equal(responder.reachability({ udp: false, tcp: true }).tcp, false, 'not seen yet');
  assert.equal(await dialBackTcp(target, TOKEN, { localAddress: '127.0.0.2', timeoutMs: 500 }), true);
  assert.equal(responder.reachability({ udp: false, tcp: true }).tcp, true);
  assert.equal(responder.reachability({ udp: false, tcp: false }).tcp, false, 'the server\'s word is needed too');
  listener.close();
  assert.equal(await dialBackTcp(target, TOKEN, { localAddress: '127.0.0.2', timeoutMs: 500 }), false);
});

test('registration with dial-back: the server reports what it reached, and the peer saw both probes', async () => {
  const observer = new ReflexiveObserver();
  const stun = resources.add(await StunServer.listen({ address: '127.0.0.1', port: 0, onBinding: observer.onBinding }), (s) => s.close());
  const server = resources.add(await RendezvousServer.listen({ host: '127.0.0.1', port: 0, stun, observer, dialBack: { localAddress: '127.0.0.2' } }), (s) => s.close());
  const { socket, mux, responder, port } = await peerSocket();
  const stunClient = resources.add(new StunUdpClient(socket, { listen: false }), (c) => c.close());
  mux.onStun((data, from) => stunClient.handle(data, { address: from.address, port: from.port, family: 'IPv4', size: data.length }));
  const listener = resources.add(await ReversalListener.listen(responder, '127.0.0.1'), (l) => l.close());
  const client = resources.add(await RendezvousClient.connect({
    url: server.url, identity: generateIdentity(), udpSocket: socket, stunClient, privateEndpoints: [`127.0.0.1:${port}`],
    tcpListenPort: listener.port, onHello: (token) => responder.expect(token),
  }), (c) => c.close());
  assert.deepEqual(client.serverReachability, { udp: true, tcp: true });
  assert.deepEqual(responder.reachability(client.serverReachability), { udp: true, tcp: true });
});

test('the dial-back waits about 3 RTTs, within [100 ms, the configured limit], and the limit while the RTT is unknown', () => {
  assert.equal(dialBackTimeout(undefined), DEFAULT_DIAL_BACK_TIMEOUT_MS);
  assert.equal(dialBackTimeout(undefined, 600), 600);
  assert.equal(dialBackTimeout(0.4), MIN_DIAL_BACK_TIMEOUT_MS, 'a LAN or lab RTT');
  assert.equal(dialBackTimeout(80), 290);
  assert.equal(dialBackTimeout(400), DEFAULT_DIAL_BACK_TIMEOUT_MS, 'a satellite link: capped');
  assert.equal(dialBackTimeout(Number.NaN, 700), 700);
});
