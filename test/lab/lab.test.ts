import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatpunchError } from '../../src/errors.js';
import {
  createLab,
  destroyPrefix,
  destroyStaleLabs,
  labSupport,
  natTruth,
  withLab,
  type Lab,
  type NatKind,
} from '../../src/lab/index.js';
import { findExecutable, listNamespaces, namespacesOfPrefix } from '../../src/lab/netns.js';
import { JsonLines, observeBehaviour, runProbe, startReflector, type Reflector } from '../../src/lab/observe.js';
import { probeArgv, type FloodResult, type PeerEvent, type PingResult, type TcpConnectResult } from '../../src/lab/probe.js';
import { SEQUENTIAL_PORT_BASE, SEQUENTIAL_PORT_COUNT } from '../../src/lab/nat-ruleset.js';
import { SERVER_ADDRESSES } from '../../src/lab/topology.js';
import { skipUnlessLab } from '../support/lab.js';
import { exited, until } from '../support/wait.js';

/**
 * The lab's own proof that each router is what it claims: plain UDP/TCP probes (not natpunch's
 * STUN code) observe mapping, filtering and port allocation from each client and must find
 * exactly natTruth(kind). One topology per group of checks; two NAT kinds per topology.
 */

const TIMEOUT = { timeout: 120_000 };

before(async () => {
  // Labs of test runs that were killed before they could clean up.
  if (labSupport().ok) await destroyStaleLabs();
});

async function assertBuiltAs(lab: Lab, reflector: Reflector, host: string, kind: NatKind): Promise<void> {
  const { mappedAddress, ...observed } = await observeBehaviour(lab.hosts[host]!, reflector);
  assert.deepEqual(observed, natTruth(kind), `${kind} seen from ${host} (mapped ${mappedAddress})`);
  const router = lab.routers[host.replace(/\d$/, '')]!;
  if (observed.natted && router.wanAddress.startsWith('203.0.113.')) {
    assert.equal(mappedAddress?.split(':')[0], router.wanAddress, `${kind}: the server sees the router's WAN address`);
  }
}

function assertNoNamespaces(prefix: string): void {
  assert.deepEqual(namespacesOfPrefix(prefix), [], `namespaces of ${prefix} left behind`);
}

test('full-cone (hairpin, TCP RST) and restricted-cone (no hairpin, TCP drop) routers behave as built', TIMEOUT, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab(
    { a: { kind: 'full-cone', hairpin: true, clients: 2, tcpUnsolicited: 'rst' }, b: { kind: 'restricted-cone', clients: 2 } },
    async (lab) => {
      const reflector = await startReflector(lab.server);

      await t.test('each kind shows its RFC 4787 mapping, filtering and port allocation', async () => {
        await Promise.all([assertBuiltAs(lab, reflector, 'a1', 'full-cone'), assertBuiltAs(lab, reflector, 'b1', 'restricted-cone')]);
      });

      await t.test('with hairpin on, a LAN host reaches its neighbour at its public mapping and is seen at its own', async () => {
        const peer = lab.hosts.a2!.spawn(probeArgv({ mode: 'peer', reflector: reflector.endpoints[0] }));
        const lines = new JsonLines(peer, 'peer a2');
        const { mapped } = await lines.next<PeerEvent>();
        assert.ok(mapped?.startsWith(`${lab.routers.a!.wanAddress}:`), `a2 is mapped on a's WAN: ${mapped}`);
        const ping = await runProbe<PingResult>(lab.hosts.a1!, { mode: 'ping', target: mapped!, reflector: reflector.endpoints[0] });
        assert.equal(ping.replied, true, 'a1 gets the echo through the hairpin');
        assert.equal(ping.from, mapped, 'the echo comes from a2’s public mapping');
        const arrival = await lines.next<PeerEvent>();
        assert.equal(arrival.from, ping.mapped, 'a2 sees a1 at a1’s public mapping, not its private address');
        peer.kill('SIGKILL');
      });

      await t.test('with hairpin off, a LAN packet to the router’s public mapping is dropped', async () => {
        const peer = lab.hosts.b2!.spawn(probeArgv({ mode: 'peer', reflector: reflector.endpoints[0] }));
        const { mapped } = await new JsonLines(peer, 'peer b2').next<PeerEvent>();
        const ping = await runProbe<PingResult>(lab.hosts.b1!, { mode: 'ping', target: mapped!, waitMs: 1500 });
        assert.equal(ping.replied, false);
        peer.kill('SIGKILL');
      });

      await t.test('an unsolicited TCP SYN gets a RST from one router and silence from the other', async () => {
        const before = await lab.routers.b!.counter('unsolicited');
        const [refused, dropped] = await Promise.all([
          runProbe<TcpConnectResult>(lab.server, { mode: 'tcp-connect', target: `${lab.routers.a!.wanAddress}:5555`, timeoutMs: 5000 }),
          runProbe<TcpConnectResult>(lab.server, { mode: 'tcp-connect', target: `${lab.routers.b!.wanAddress}:5555`, timeoutMs: 1500 }),
        ]);
        assert.equal(refused.result, 'refused', `rst router: ${JSON.stringify(refused)}`);
        assert.equal(dropped.result, 'timeout', `drop router: ${JSON.stringify(dropped)}`);
        assert.ok((await lab.routers.a!.counter('unsolicited')).packets >= 1, 'the refused SYN is counted');
        assert.ok((await lab.routers.b!.counter('unsolicited')).packets > before.packets, 'the dropped SYN is counted');
      });
    },
  );
});

test('port-restricted (short UDP timeout) and eim-random-port routers behave as built; counters count', TIMEOUT, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'port-restricted', udpTimeoutSeconds: 7 }, b: { kind: 'eim-random-port' } }, async (lab) => {
    const reflector = await startReflector(lab.server);
    const a = lab.routers.a!;

    await t.test('each kind shows its RFC 4787 mapping, filtering and port allocation', async () => {
      await Promise.all([assertBuiltAs(lab, reflector, 'a1', 'port-restricted'), assertBuiltAs(lab, reflector, 'b1', 'eim-random-port')]);
    });

    await t.test('udpTimeoutSeconds is set in that router’s namespace only, and its UDP mappings expire by it', async () => {
      const keys = ['net.netfilter.nf_conntrack_udp_timeout', 'net.netfilter.nf_conntrack_udp_timeout_stream'];
      const inA = await a.exec(['sysctl', '-n', ...keys], { timeoutMs: 20_000 });
      assert.deepEqual(inA.stdout.trim().split('\n'), ['7', '7']);
      const inB = await lab.routers.b!.exec(['sysctl', '-n', ...keys], { timeoutMs: 20_000 });
      assert.notDeepEqual(inB.stdout.trim().split('\n'), ['7', '7'], 'router b keeps the kernel defaults');
      await runProbe(lab.hosts.a1!, { mode: 'mapping', targets: [reflector.endpoints[0]] });
      const udp = (await a.conntrack()).filter((e) => e.proto === 'udp');
      assert.ok(udp.length > 0, 'the probe left UDP mappings');
      for (const entry of udp) assert.ok(entry.timeout <= 7, `conntrack timeout ${entry.timeout} s`);
    });

    await t.test('conntrack shows the mapping: internal endpoint in the original tuple, public one in the reply', async () => {
      const { local, seen } = await runProbe<{ local: number; seen: string[] }>(lab.hosts.a1!, { mode: 'mapping', targets: [reflector.endpoints[1]] });
      const entry = (await a.conntrack()).find((e) => e.proto === 'udp' && e.sport === local && e.dport === 4479);
      assert.ok(entry, `an entry for ${lab.hosts.a1!.addresses[0]}:${local}`);
      assert.equal(entry.src, lab.hosts.a1!.addresses[0]);
      assert.equal(`${entry.reply.dst}:${entry.reply.dport}`, seen[0]);
    });

    await t.test('addCounter counts exactly the packets that leave toward an address, and arriving ones', async () => {
      await a.addCounter('to-x', `ip daddr ${SERVER_ADDRESSES[1]} udp dport 4000`);
      await a.addCounter('from-reflector', `ip saddr ${SERVER_ADDRESSES[0]} udp sport ${reflector.endpoints[0].split(':')[1]}`, 'in');
      const wanOut = await a.counter('wan-out');
      await runProbe(lab.hosts.a1!, { mode: 'send', target: `${SERVER_ADDRESSES[1]}:4000`, count: 7 });
      assert.deepEqual(await a.counter('to-x').then((c) => c.packets), 7);
      assert.ok((await a.counter('wan-out')).packets >= wanOut.packets + 7);
      await runProbe(lab.hosts.a1!, { mode: 'mapping', targets: [reflector.endpoints[0]] });
      assert.ok((await a.counter('from-reflector')).packets >= 1);
    });

    await t.test('an unknown counter or an unusable counter name is a LabError', async () => {
      await assert.rejects(a.counter('no-such-counter'), (error: unknown) => NatpunchError.is(error) && error.code === 'ERR_LAB' && /no-such-counter/.test(error.message));
      await assert.rejects(a.addCounter('bad name', 'udp dport 1'), (error: unknown) => NatpunchError.is(error) && error.code === 'ERR_LAB');
      await assert.rejects(a.addCounter('x', 'udp dport 1; flush ruleset'), (error: unknown) => NatpunchError.is(error) && error.code === 'ERR_LAB');
    });
  });
});

test('symmetric-random and symmetric-seq routers behave as built', TIMEOUT, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'symmetric-random' }, b: { kind: 'symmetric-seq' } }, async (lab) => {
    const reflector = await startReflector(lab.server);

    await t.test('each kind shows its RFC 4787 mapping, filtering and port allocation', async () => {
      await Promise.all([assertBuiltAs(lab, reflector, 'a1', 'symmetric-random'), assertBuiltAs(lab, reflector, 'b1', 'symmetric-seq')]);
    });

    await t.test('the sequential NAT hands out consecutive ports from its range, one per new flow', async () => {
      const { seen } = await runProbe<{ seen: string[] }>(lab.hosts.b1!, { mode: 'mapping', targets: [...reflector.endpoints] });
      const ports = seen.map((s) => Number(s.split(':')[1]));
      for (const p of ports) assert.ok(p >= SEQUENTIAL_PORT_BASE && p < SEQUENTIAL_PORT_BASE + SEQUENTIAL_PORT_COUNT, `port ${p}`);
      assert.deepEqual(ports.slice(1).map((p, i) => p - ports[i]!), [1, 1, 1]);
    });
  });
});

test('symmetric-firewall and open routers behave as built', TIMEOUT, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'symmetric-firewall' }, b: { kind: 'open' } }, async (lab) => {
    const reflector = await startReflector(lab.server);

    await t.test('each kind shows its RFC 4787 mapping, filtering and port allocation', async () => {
      await Promise.all([assertBuiltAs(lab, reflector, 'a1', 'symmetric-firewall'), assertBuiltAs(lab, reflector, 'b1', 'open')]);
    });

    await t.test('their clients have public addresses the server reaches directly, except through the firewall', async () => {
      const a1 = lab.hosts.a1!.addresses[0]!;
      const b1 = lab.hosts.b1!.addresses[0]!;
      assert.match(a1, /^192\.0\.2\./);
      assert.match(b1, /^192\.0\.2\./);
      const [firewalled, open] = await Promise.all([
        runProbe<TcpConnectResult>(lab.server, { mode: 'tcp-connect', target: `${a1}:5555`, timeoutMs: 1500 }),
        runProbe<TcpConnectResult>(lab.server, { mode: 'tcp-connect', target: `${b1}:5555`, timeoutMs: 5000 }),
      ]);
      assert.equal(firewalled.result, 'timeout', 'the firewall drops an unsolicited SYN');
      assert.equal(open.result, 'refused', 'the open host itself answers (no listener)');
    });
  });
});

test('udp-blocked, and a port-restricted NAT behind a symmetric carrier-grade NAT, behave as built', TIMEOUT, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'udp-blocked' }, b: { kind: 'port-restricted', carrier: 'symmetric-random' } }, async (lab) => {
    const reflector = await startReflector(lab.server);

    await t.test('udp-blocked passes no UDP but translates TCP', async () => {
      await assertBuiltAs(lab, reflector, 'a1', 'udp-blocked');
    });

    await t.test('behind the carrier, the home router has a 100.64/10 WAN and the server sees the carrier’s address', async () => {
      const home = lab.routers.b!;
      const carrier = lab.routers['carrier-b']!;
      assert.equal(carrier.kind, 'symmetric-random');
      assert.match(home.wanAddress, /^100\.64\./);
      const { mappedAddress, ...observed } = await observeBehaviour(lab.hosts.b1!, reflector);
      assert.equal(mappedAddress?.split(':')[0], carrier.wanAddress);
      // The outer NAT decides: endpoint-dependent mapping, random ports.
      assert.deepEqual(observed, natTruth('symmetric-random'));
      const inner = (await home.conntrack()).find((e) => e.proto === 'udp' && e.src === lab.hosts.b1!.addresses[0]);
      assert.equal(inner?.reply.dst, home.wanAddress, 'the home router translates to its 100.64 address');
      const outer = (await carrier.conntrack()).find((e) => e.proto === 'udp' && e.src === home.wanAddress);
      assert.equal(outer?.reply.dst, carrier.wanAddress, 'the carrier translates that to its public address');
    });
  });
});

test('lossPercent drops roughly that share of packets on the WAN link in each direction', TIMEOUT, async (t) => {
  if (skipUnlessLab(t)) return;
  await withLab({ a: { kind: 'port-restricted', lossPercent: 30 } }, async (lab) => {
    const reflector = await startReflector(lab.server);
    const count = 2000;
    const result = await runProbe<FloodResult>(lab.hosts.a1!, { mode: 'flood', target: reflector.endpoints[0], count, session: 'loss' }, 60_000);
    const up = result.serverReceived / count;
    const down = result.echoed / result.serverReceived;
    // 30 % loss: expect about 0.7 each way; the margin is wide on purpose (binomial, n = 2000).
    assert.ok(up > 0.55 && up < 0.85, `outbound delivery ${up.toFixed(3)}`);
    assert.ok(down > 0.55 && down < 0.85, `inbound delivery ${down.toFixed(3)}`);
    assert.ok((await lab.routers.a!.counter('lost')).packets > 0, 'the router side counts what it dropped');
  });
});

/** coturn with RFC 5780 on both server addresses (-n: Debian's config file turns RFC 5780 off). */
async function startCoturn(lab: Lab, pidfile: string): Promise<void> {
  const turn = lab.server.spawn(['turnserver', '-n', '-v', '--no-cli', '--no-tls', '--no-dtls', '-L', SERVER_ADDRESSES[0], '-L', SERVER_ADDRESSES[1], '--log-file', 'stdout', '--pidfile', pidfile]);
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`coturn did not open its 4 UDP listeners in 15 s:\n${log}`)), 15_000);
    turn.once('exit', (code) => reject(new Error(`coturn exited (${code}):\n${log}`)));
    turn.stdout!.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      if (new Set(log.match(/UDP listener opened on: ?[\d.]+:\d+/g) ?? []).size >= 4) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

test('miniupnpd in a lab router maps a port over NAT-PMP, opening the NAT to unsolicited traffic', TIMEOUT, async (t) => {
  if (skipUnlessLab(t)) return;
  const missing = ['turnserver', 'miniupnpd', 'natpmpc'].filter((c) => findExecutable(c) === null);
  if (missing.length > 0) {
    console.log(`# SKIP miniupnpd: ${missing.join(', ')} not installed`);
    t.skip(`${missing.join(', ')} not installed`);
    return;
  }
  await withLab({ a: { kind: 'port-restricted', miniupnpd: true } }, async (lab) => {
    const reflector = await startReflector(lab.server);
    const pidfile = join(tmpdir(), `${lab.prefix}-turnserver.pid`);
    t.after(() => rmSync(pidfile, { force: true }));
    await startCoturn(lab, pidfile);
    const router = lab.routers.a!;
    const peer = lab.hosts.a1!.spawn(probeArgv({ mode: 'peer', reflector: reflector.endpoints[0], localPort: 5000 }));
    await new JsonLines(peer, 'peer a1').next<PeerEvent>();
    const publicEndpoint = `${router.wanAddress}:5000`;
    const before = await runProbe<PingResult>(lab.server, { mode: 'ping', target: publicEndpoint, waitMs: 1500 });
    assert.equal(before.replied, false, 'port-restricted filtering keeps the server out before the mapping');

    const miniupnpd = await router.startMiniupnpd({ stunHost: SERVER_ADDRESSES[0], stunPort: 3478 });
    try {
      const natpmp = await lab.hosts.a1!.exec(['natpmpc', '-g', '10.0.1.1', '-a', '5000', '5000', 'udp', '60'], { timeoutMs: 30_000 });
      assert.equal(natpmp.code, 0, natpmp.stdout + natpmp.stderr);
      assert.match(natpmp.stdout, new RegExp(`Public IP address : ${router.wanAddress.replace(/\./g, '\\.')}`));
      assert.match(natpmp.stdout, /Mapped public port 5000 protocol UDP to local port 5000/);
      const after = await runProbe<PingResult>(lab.server, { mode: 'ping', target: publicEndpoint });
      assert.equal(after.replied, true, `the mapping lets the server in; miniupnpd log:\n${miniupnpd.log()}`);
      assert.equal(after.from, publicEndpoint);
    } finally {
      await miniupnpd.stop();
    }
    assert.match(miniupnpd.log(), /Listening for NAT-PMP/);
  });
});

test('createLab rejects bad options with a LabError and leaves no namespace behind', async (t) => {
  if (skipUnlessLab(t)) return;
  const prefix = `np${process.pid}n900`;
  await assert.rejects(
    createLab({ prefix, a: { kind: 'cone' as NatKind } }),
    (error: unknown) => NatpunchError.is(error) && error.code === 'ERR_LAB' && /a\.kind is "cone"/.test(error.message),
  );
  await assert.rejects(
    createLab({ prefix: 'bad-prefix', a: { kind: 'open' } }),
    (error: unknown) => NatpunchError.is(error) && error.code === 'ERR_LAB' && /prefix/.test(error.message),
  );
  await assert.rejects(
    createLab({ prefix, a: { kind: 'open', lossPercent: 120 } }),
    (error: unknown) => NatpunchError.is(error) && error.code === 'ERR_LAB' && /lossPercent/.test(error.message),
  );
  assertNoNamespaces(prefix);
});

test('withLab tears everything down when the callback throws, killing what it spawned', TIMEOUT, async (t) => {
  if (skipUnlessLab(t)) return;
  let prefix = '';
  let child: ReturnType<Lab['server']['spawn']> | undefined;
  await assert.rejects(
    withLab({ a: { kind: 'port-restricted' } }, async (lab) => {
      prefix = lab.prefix;
      assert.equal(namespacesOfPrefix(prefix).length, 4, 'inet, server, router a and host a1 exist');
      child = lab.hosts.a1!.spawn(['sleep', '60']);
      throw new Error('boom');
    }),
    /boom/,
  );
  assertNoNamespaces(prefix);
  assert.ok(child !== undefined && (child.exitCode !== null || child.signalCode !== null), 'the spawned sleep is gone');
});

test('down() is idempotent and an aborted signal tears a lab down', TIMEOUT, async (t) => {
  if (skipUnlessLab(t)) return;
  const controller = new AbortController();
  const lab = await createLab({ a: { kind: 'open' }, signal: controller.signal });
  try {
    assert.ok(namespacesOfPrefix(lab.prefix).length > 0);
    controller.abort();
  } finally {
    await lab.down();
    await lab.down();
  }
  assertNoNamespaces(lab.prefix);
  await assert.rejects(
    createLab({ a: { kind: 'open' }, signal: AbortSignal.abort() }),
    (error: unknown) => NatpunchError.is(error) && error.code === 'ERR_ABORTED',
  );
});

test('destroyPrefix deletes leftover namespaces and kills processes still inside them', async (t) => {
  if (skipUnlessLab(t)) return;
  const prefix = `np${process.pid}n901`;
  execFileSync('ip', ['netns', 'add', `${prefix}-junk`]);
  const sleeper = spawn('ip', ['netns', 'exec', `${prefix}-junk`, 'sleep', '60'], { stdio: 'ignore' });
  try {
    const killed = exited(sleeper, { timeoutMs: 5000 });
    killed.catch(() => undefined); // awaited below, unless an assertion fails first
    // The sleeper is inside once `ip netns pids` lists it.
    await until(() => execFileSync('ip', ['netns', 'pids', `${prefix}-junk`]).toString().trim() !== '', `the sleeper inside ${prefix}-junk`, { timeoutMs: 5000 });
    await destroyPrefix(prefix);
    assertNoNamespaces(prefix);
    await killed;
    assert.equal(sleeper.signalCode, 'SIGKILL');
  } finally {
    sleeper.kill('SIGKILL');
    await destroyPrefix(prefix);
  }
  assert.ok(!listNamespaces().includes(`${prefix}-junk`));
});
