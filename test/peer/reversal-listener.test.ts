import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from '../support/wait.js';
import { NatpunchError } from '../../src/errors.js';
import { UdpMux } from '../../src/punch/udp-mux.js';
import { DialBackResponder } from '../../src/peer/reachability.js';
import { ReversalListener, dialReversal } from '../../src/peer/reversal-listener.js';

const closers: (() => unknown)[] = [];
afterEach(async () => { for (const close of closers.splice(0).reverse()) await close(); });

async function listener(): Promise<ReversalListener> {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const mux = new UdpMux(socket);
  const responder = new DialBackResponder(mux);
  const l = await ReversalListener.listen(responder, '127.0.0.1');
  closers.push(() => socket.close(), () => mux.close(), () => responder.close(), () => l.close());
  return l;
}

const at = (port: number) => [{ family: 4 as const, address: '127.0.0.1', port }];

test('a reversal dial reaches the session waiting on the listener; bytes after the preamble are left for the secure stream', async () => {
  const l = await listener();
  const accepted = l.accept('session-one-aaaaaaaa', { timeoutMs: 10_000 });
  const dialed = await dialReversal({ remoteCandidates: at(l.port), session: 'session-one-aaaaaaaa' });
  closers.push(() => dialed.socket.destroy());
  dialed.socket.write('noise');
  const socket = await accepted;
  closers.push(() => socket.destroy());
  const [chunk] = await once(socket, 'data') as [Buffer];
  assert.equal(chunk.toString(), 'noise');
});

test('a reversal connection made before anyone waits for its session is kept for it', async () => {
  const l = await listener();
  const dialed = await dialReversal({ remoteCandidates: at(l.port), session: 'session-two-aaaaaaaa' });
  closers.push(() => dialed.socket.destroy());
  dialed.socket.write('x');
  // (Whether the listener has read the preamble by now or reads it later, accept() gets it.)
  const socket = await l.accept('session-two-aaaaaaaa', { timeoutMs: 10_000 });
  closers.push(() => socket.destroy());
  const [chunk] = await once(socket, 'data') as [Buffer];
  assert.equal(chunk.toString(), 'x');
});

test('waiting for a reversal connection that never comes fails with ERR_TRANSPORT naming the port', async () => {
  const l = await listener();
  await assert.rejects(l.accept('session-three-aaaaaa', { timeoutMs: 50 }),
    (e: unknown) => e instanceof NatpunchError && e.code === 'ERR_TRANSPORT' && e.message.includes(`port ${l.port}`));
});

test('a connection with another preamble is closed, and a dial to a closed port fails with ERR_TRANSPORT', async () => {
  const l = await listener();
  const stranger = net.connect({ host: '127.0.0.1', port: l.port });
  closers.push(() => stranger.destroy());
  stranger.on('error', () => undefined);
  stranger.write(Buffer.alloc(20, 0x41));
  await once(stranger, 'close');
  const port = l.port;
  l.close();
  await assert.rejects(dialReversal({ remoteCandidates: at(port), session: 'session-four-aaaaaaa', budgetMs: 2_000 }),
    (e: unknown) => e instanceof NatpunchError && e.code === 'ERR_TRANSPORT' && /ECONNREFUSED/.test(e.message));
});
