import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withLab, type Host } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { startServe, endpointIp } from '../support/serve.js';
import { ProcessOutput, skipUnlessInstalled, stopProcess } from '../support/process.js';
import {
  parseMiniupnpdRedirects, parseMiniupnpdStun, parseNatpmpc, parseUpnpcAdd, parseUpnpcList,
} from '../support/miniupnp.js';

/**
 * Interop: miniupnpd's STUN client (`ext_perform_stun`) against `natpunch serve`. miniupnpd 2.3.1
 * refuses to forward ports while its WAN address is in a reserved range (the lab's is) unless
 * RFC 5780's four tests, run from the router's own address, show nothing filters in front of it.
 * So a working port mapping from a LAN client proves miniupnpd understood all four of our answers.
 */

const PRIMARY = '198.51.100.10';
const ALTERNATE = '198.51.100.11';
const UPNP_PORT = 5000;
const NATPMP_PORT = 6000;

/** A UDP socket on `port` that prints "ready" once bound and the first datagram's source, then exits. */
const receiveOnce = (port: number): string[] => [process.execPath, '-e', `
  const socket = require('node:dgram').createSocket('udp4');
  socket.on('message', (data, from) => { console.log(JSON.stringify({ from: from.address + ':' + from.port, data: String(data) })); process.exit(0); });
  socket.bind(${port}, () => console.log('ready'));
`];

/** Send a datagram to `target` every 100 ms (UDP: the first may be lost while ARP settles) until stopped, 10 s at most. */
const sendRepeatedly = (address: string, port: number, text: string): string[] => [process.execPath, '-e', `
  const socket = require('node:dgram').createSocket('udp4');
  let sent = 0;
  const send = () => { socket.send(${JSON.stringify(text)}, ${port}, ${JSON.stringify(address)}); if (++sent === 100) process.exit(1); };
  send(); setInterval(send, 100);
`];

/** Send datagrams from `from` to `to`:`port` until one arrives at `receiver`, listening on `port`; what arrived. */
async function deliver(from: Host, receiver: Host, to: string, port: number): Promise<{ from: string; data: string }> {
  const listener = new ProcessOutput(receiver.spawn(receiveOnce(port)), `UDP receiver in ${receiver.name}`);
  let sender: ProcessOutput | undefined;
  try {
    await listener.waitFor([/^ready$/]);
    sender = new ProcessOutput(from.spawn(sendRepeatedly(to, port, 'through the port mapping')), `UDP sender in ${from.name}`);
    const text = await listener.ended(15_000);
    const line = text.split('\n').find((l) => l.startsWith('{'));
    assert.ok(line, `receiver in ${receiver.name} printed no datagram: ${text}`);
    return JSON.parse(line) as { from: string; data: string };
  } finally {
    await stopProcess(listener.child);
    if (sender) await stopProcess(sender.child);
  }
}

test('miniupnpd learns its public address from natpunch serve over STUN, then maps ports for a LAN client', { timeout: 120_000 }, async (t) => {
  if (skipUnlessLab(t) || skipUnlessInstalled(t, ['miniupnpd', 'upnpc', 'natpmpc'], 'apt-get install -y miniupnpd-nftables miniupnpc natpmpc')) return;
  await withLab({ a: { kind: 'port-restricted', miniupnpd: true } }, async (lab) => {
    const router = lab.routers.a!;
    const client = lab.hosts.a1!;
    const clientIp = client.addresses[0]!;
    const serve = await startServe(lab.server, PRIMARY, ALTERNATE, ['--no-relay']);
    try {
      const miniupnpd = await router.startMiniupnpd({ stunHost: PRIMARY, stunPort: 3478 });
      try {
        // 1. Its STUN run: four answers, one from each of our endpoints, each naming the
        //    router's own address as mapped and our alternate endpoint as OTHER-ADDRESS.
        const log = miniupnpd.log();
        const stun = parseMiniupnpdStun(log);
        assert.equal(stun.answers.length, 4, log);
        assert.deepEqual(new Set(stun.answers.map((a) => a.origin)), new Set(serve.endpoints), log);
        for (const answer of stun.answers) {
          assert.equal(endpointIp(answer.mapped), router.wanAddress, log);
          assert.equal(answer.other, serve.other, log);
        }
        assert.equal(stun.publicAddress, router.wanAddress, log);
        assert.equal(stun.forwarding, 'enabled', log);

        // 2. UPnP IGD: the client maps a UDP port and finds it listed.
        const add = await client.exec(['upnpc', '-i', '-e', 'natpunch-interop', '-a', clientIp, String(UPNP_PORT), String(UPNP_PORT), 'UDP'], { timeoutMs: 30_000 });
        assert.equal(add.code, 0, add.stdout + add.stderr);
        assert.deepEqual(parseUpnpcAdd(add.stdout), { protocol: 'UDP', external: `${router.wanAddress}:${UPNP_PORT}`, internal: `${clientIp}:${UPNP_PORT}` }, add.stdout);
        const list = await client.exec(['upnpc', '-i', '-l'], { timeoutMs: 30_000 });
        const entry = parseUpnpcList(list.stdout).find((e) => e.description === 'natpunch-interop');
        assert.ok(entry, list.stdout);
        assert.deepEqual({ protocol: entry.protocol, externalPort: entry.externalPort, internal: entry.internal }, { protocol: 'UDP', externalPort: UPNP_PORT, internal: `${clientIp}:${UPNP_PORT}` });
        assert.ok(entry.leaseSeconds > 0, list.stdout);

        // 3. NAT-PMP: the same daemon maps a second port.
        const pmp = await client.exec(['natpmpc', '-a', String(NATPMP_PORT), String(NATPMP_PORT), 'udp', '60'], { timeoutMs: 30_000 });
        assert.equal(pmp.code, 0, pmp.stdout + pmp.stderr);
        const natpmp = parseNatpmpc(pmp.stdout);
        assert.equal(natpmp.publicAddress, router.wanAddress, pmp.stdout);
        assert.deepEqual(natpmp.mapping, { protocol: 'UDP', publicPort: NATPMP_PORT, privatePort: NATPMP_PORT, lifetimeSeconds: 60 }, pmp.stdout);

        // 4. Both mappings are DNAT rules in miniupnpd's nft chain...
        const chain = await router.exec(['nft', 'list', 'chain', 'inet', 'miniupnpd', 'prerouting_miniupnpd'], { timeoutMs: 20_000 });
        assert.equal(chain.code, 0, chain.stderr);
        const redirects = parseMiniupnpdRedirects(chain.stdout);
        for (const port of [UPNP_PORT, NATPMP_PORT]) {
          assert.ok(redirects.some((r) => r.protocol === 'UDP' && r.externalPort === port && r.internal === `${clientIp}:${port}`), chain.stdout);
        }
        // ...and carry traffic the client never asked for from the server to it.
        const got = await deliver(lab.server, client, router.wanAddress, UPNP_PORT);
        assert.equal(got.data, 'through the port mapping');
        assert.ok(lab.server.addresses.includes(endpointIp(got.from)!), got.from);
      } finally {
        await miniupnpd.stop();
      }
      // Stopped, it leaves no redirect behind.
      const after = await router.exec(['nft', 'list', 'chain', 'inet', 'miniupnpd', 'prerouting_miniupnpd'], { timeoutMs: 20_000 });
      assert.deepEqual(parseMiniupnpdRedirects(after.stdout), [], after.stdout);
    } finally {
      await serve.stop();
    }
  });
});
