import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { withLab, type Host, type Lab, type Router } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { startServe, endpointIp } from '../support/serve.js';
import { ProcessOutput, skipUnlessInstalled, stopProcess } from '../support/process.js';
import { parseMiniupnpdRedirects } from '../support/miniupnp.js';

/**
 * natpunch's own port-mapping client against the real miniupnpd 2.3.1 (UPnP IGD, NAT-PMP and
 * PCP in one daemon) in a lab NAT router. For each protocol and each of UDP and TCP, a LAN host
 * maps a port; the redirect shows up in miniupnpd's nft chain; traffic the host never asked for,
 * sent from the server namespace to the mapped external address and port, reaches it; then the
 * mapping is deleted (lifetime 0 / DeletePortMapping) and the redirect is gone.
 */

const PRIMARY = '198.51.100.10';
const ALTERNATE = '198.51.100.11';
const CHILD = fileURLToPath(new URL('../support/portmap-child.js', import.meta.url));
const TEXT = 'through the port mapping';

interface Mapped { method: string; protocol: 'udp' | 'tcp'; internalPort: number; gateway: string; externalAddress: string; externalPort: number; lifetimeSeconds: number }

/** From `from`, send to address:port until stopped (UDP every 100 ms; TCP: connect, write, end, retried every 200 ms until one is accepted). */
const sender = (protocol: 'udp' | 'tcp', address: string, port: number): string[] => [process.execPath, '-e', protocol === 'udp' ? `
  const socket = require('node:dgram').createSocket('udp4');
  let sent = 0;
  const send = () => { socket.send(${JSON.stringify(TEXT)}, ${port}, ${JSON.stringify(address)}); if (++sent === 200) process.exit(1); };
  send(); setInterval(send, 100);
` : `
  let tries = 0;
  const attempt = () => {
    const socket = require('node:net').connect(${port}, ${JSON.stringify(address)});
    socket.on('connect', () => socket.end(${JSON.stringify(TEXT)}));
    socket.on('close', (hadError) => { if (!hadError) process.exit(0); });
    socket.on('error', () => { if (++tries === 100) process.exit(1); setTimeout(attempt, 200); });
  };
  attempt();
`];

async function redirects(router: Router): Promise<ReturnType<typeof parseMiniupnpdRedirects>> {
  const chain = await router.exec(['nft', 'list', 'chain', 'inet', 'miniupnpd', 'prerouting_miniupnpd'], { timeoutMs: 20_000 });
  assert.equal(chain.code, 0, chain.stderr);
  return parseMiniupnpdRedirects(chain.stdout);
}

/** One protocol, one transport: map, deliver through the mapping, delete. */
interface Scenario { methods?: readonly string[]; lifetimeSeconds?: number; renewals?: number }

async function mapDeliverDelete(lab: Lab, client: Host, method: string, protocol: 'udp' | 'tcp', internalPort: number, scenario: Scenario = {}): Promise<void> {
  const router = lab.routers.a!;
  const clientIp = client.addresses[0]!;
  const methods = scenario.methods ?? [method];
  const lifetimeSeconds = scenario.lifetimeSeconds ?? 120;
  const child = new ProcessOutput(client.spawn([process.execPath, CHILD, JSON.stringify({ protocol, internalPort, methods, lifetimeSeconds, renewals: scenario.renewals ?? 0 })]), `portmap child (${methods.join('+')} ${protocol}) in ${client.name}`);
  let send: ProcessOutput | undefined;
  try {
    const [mappedLine] = await child.waitFor([/"event":"(mapped|error)"/], 30_000);
    const mapped = JSON.parse(mappedLine!) as Mapped & { event: string; message?: string };
    assert.equal(mapped.event, 'mapped', `${method} ${protocol}: ${mapped.message ?? mappedLine}`);
    assert.equal(mapped.method, method);
    assert.equal(mapped.protocol, protocol);
    assert.equal(mapped.gateway, router.lanAddress, 'the default route\'s gateway, read from /proc/net/route in the LAN host');
    assert.equal(mapped.externalAddress, router.wanAddress);
    assert.ok(mapped.externalPort >= 1024 && mapped.externalPort <= 65535, mappedLine);
    assert.ok(mapped.lifetimeSeconds > 0 && mapped.lifetimeSeconds <= lifetimeSeconds, mappedLine);

    if (scenario.renewals) {
      // Renewed before expiry, again and again: the last renewal comes after the first grant
      // would have expired, and the mapping still carries traffic below.
      await child.waitFor([new RegExp(`"event":"renewed","n":${scenario.renewals}\\b`)], 30_000);
      const renewals = child.text.split('\n').filter((l) => l.includes('"event":"renewed"')).map((l) => JSON.parse(l) as { externalPort: number; lifetimeSeconds: number });
      assert.equal(renewals.length, scenario.renewals, child.text);
      for (const r of renewals) assert.equal(r.externalPort, mapped.externalPort, 'a renewal keeps the external port');
    }

    const upper = protocol.toUpperCase();
    const listed = await redirects(router);
    assert.ok(listed.some((r) => r.protocol === upper && r.externalPort === mapped.externalPort && r.internal === `${clientIp}:${internalPort}`),
      `${method} ${protocol}: no redirect ${upper} ${mapped.externalPort} -> ${clientIp}:${internalPort} in ${JSON.stringify(listed)}`);

    send = new ProcessOutput(lab.server.spawn(sender(protocol, mapped.externalAddress, mapped.externalPort)), `${protocol} sender in server`);
    const [receivedLine] = await child.waitFor([/"event":"received"/], 30_000);
    const received = JSON.parse(receivedLine!) as { from: string; data: string };
    assert.equal(received.data, TEXT);
    assert.ok(lab.server.addresses.includes(endpointIp(received.from)!), `${method} ${protocol}: came from ${received.from}, expected the server`);

    await child.waitFor([/"event":"closed"/], 30_000);
    const after = await redirects(router);
    assert.ok(!after.some((r) => r.protocol === upper && r.externalPort === mapped.externalPort),
      `${method} ${protocol}: the redirect for ${mapped.externalPort} is still there after close: ${JSON.stringify(after)}`);
  } finally {
    if (send) await stopProcess(send.child);
    await stopProcess(child.child);
  }
}

const METHODS = [
  { method: 'nat-pmp', port: 41000 },
  { method: 'pcp', port: 42000 },
  { method: 'upnp-igd', port: 43000 },
] as const;

test('our PCP, NAT-PMP and UPnP-IGD clients each map a UDP and a TCP port on miniupnpd, traffic arrives through it, and close deletes it', { timeout: 240_000 }, async (t) => {
  if (skipUnlessLab(t) || skipUnlessInstalled(t, ['miniupnpd'], 'apt-get install -y miniupnpd-nftables')) return;
  await withLab({ a: { kind: 'port-restricted', miniupnpd: true } }, async (lab) => {
    const serve = await startServe(lab.server, PRIMARY, ALTERNATE, ['--no-relay']);
    try {
      const miniupnpd = await lab.routers.a!.startMiniupnpd({ stunHost: PRIMARY, stunPort: 3478, minLifetimeSeconds: 2 });
      try {
        for (const { method, port } of METHODS) {
          for (const [i, protocol] of (['udp', 'tcp'] as const).entries()) {
            await t.test(`${method} ${protocol}`, () => mapDeliverDelete(lab, lab.hosts.a1!, method, protocol, port + i));
          }
        }
        // All three allowed (mapPort's default): PCP answers within UPnP's head start and wins,
        // and UPnP never adds a second mapping (the check after close finds no redirect at all).
        await t.test('all methods: PCP wins, nothing else is left mapped', async () => {
          await mapDeliverDelete(lab, lab.hosts.a1!, 'pcp', 'udp', 44000, { methods: ['pcp', 'nat-pmp', 'upnp-igd'] });
          assert.deepEqual(await redirects(lab.routers.a!), [], 'a mapping from a protocol that lost the race was left behind');
        });
        // A 4 s lifetime, renewed at about half of it: two renewals span past the first expiry.
        for (const { method, port } of METHODS) {
          await t.test(`${method}: a 4 s mapping is renewed before it expires and keeps working`, () =>
            mapDeliverDelete(lab, lab.hosts.a1!, method, 'udp', port + 10, { lifetimeSeconds: 4, renewals: 2 }));
        }
      } catch (error) {
        throw new Error(`${(error as Error).message}\nminiupnpd's log:\n${miniupnpd.log().split('\n').slice(-40).join('\n')}`, { cause: error });
      } finally {
        await miniupnpd.stop();
      }
    } finally {
      await serve.stop();
    }
  });
});
