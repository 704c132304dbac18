import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from '../support/wait.js';

const dist = new URL('../../src/', import.meta.url).href;

/**
 * Runs `body` in a fresh node process that never calls process.exit: it ends only if every
 * socket and timer was released. Resolves with its exit code and output.
 */
async function runAlone(body: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const script = `
    import dgram from 'node:dgram';
    import { once } from 'node:events';
    import { generateIdentity } from '${dist}identity/index.js';
    import { RendezvousClient, RendezvousServer, ReflexiveObserver } from '${dist}rendezvous/index.js';
    import { StunServer } from '${dist}stun/server.js';
    const observer = new ReflexiveObserver();
    const stun = await StunServer.listen({ address: '127.0.0.1', port: 0, onBinding: observer.onBinding });
    const server = await RendezvousServer.listen({ host: '127.0.0.1', port: 0, stun, observer });
    async function peer(options = {}) {
      const udpSocket = dgram.createSocket('udp4');
      udpSocket.bind(0, '127.0.0.1');
      await once(udpSocket, 'listening');
      const client = await RendezvousClient.connect({ url: server.url, identity: generateIdentity(), udpSocket, privateEndpoints: ['127.0.0.1:' + udpSocket.address().port], ...options });
      return { client, udpSocket };
    }
    ${body}
    console.log('done');
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  // A child that hangs is killed at 20 s; its exit then comes at once, so 25 s bound the wait.
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code] = await once(child, 'exit', { timeoutMs: 25_000, seen: () => stderr }) as [number | null];
  clearTimeout(killer);
  return { code, stdout, stderr };
}

test('after a full session and close(), the process exits by itself (no timer or socket left)', async () => {
  const result = await runAlone(`
    const a = await peer();
    const b = await peer();
    const punched = once(b.client, 'punch');
    await a.client.connect(b.client.peerId);
    await punched;
    a.client.close(); b.client.close(); a.udpSocket.close(); b.udpSocket.close();
    await server.close(); await stun.close();
  `);
  assert.equal(result.stderr, '');
  assert.equal(result.stdout.trim(), 'done');
  assert.equal(result.code, 0);
});

test('closing with connects and accepts still pending leaves nothing running either', async () => {
  const result = await runAlone(`
    const a = await peer();
    const b = await peer({ accept: () => new Promise(() => {}) });
    const pending = a.client.connect(b.client.peerId, { timeoutMs: 60000 }).catch((e) => e.reason);
    await new Promise((r) => { const t = () => server.stats.sessions ? r() : setTimeout(t, 2); t(); });
    a.client.close(); b.client.close(); a.udpSocket.close(); b.udpSocket.close();
    console.log(await pending);
    await server.close(); await stun.close();
  `);
  assert.equal(result.stderr, '');
  assert.deepEqual(result.stdout.trim().split('\n'), ['closed', 'done']);
  assert.equal(result.code, 0);
});

test('a server closed while clients are connected leaves the clients\' process free to exit', async () => {
  const result = await runAlone(`
    const a = await peer();
    const closed = once(a.client, 'close');
    await server.close(); await stun.close();
    console.log((await closed)[0].reason);
    a.udpSocket.close();
  `);
  assert.equal(result.stderr, '');
  assert.deepEqual(result.stdout.trim().split('\n'), ['shutdown', 'done']);
  assert.equal(result.code, 0);
});
