import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withLab } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { natpunch } from '../support/cli.js';
import { startServe } from '../support/serve.js';
import { ProcessOutput, skipUnlessInstalled, stopProcess } from '../support/process.js';
import { parseMiniupnpdRedirects } from '../support/miniupnp.js';

/**
 * A peer behind a port-restricted (or symmetric-random) NAT running miniupnpd, listening with --port-mapping, and a peer
 * behind symmetric-random: punching alone fails for this pair (NATLAB-FACTS: port-restricted ×
 * symmetric random needs birthday probing), and the relay is off. The listener's gateway maps
 * its UDP port and it signs the mapping as a `mapped` candidate. The mapping also makes it
 * directly reachable (the server's dial-back from its other address now arrives), so the
 * connector dials the mapped endpoint without punching: `direct-udp` by `udp-port-mapping`.
 * When the listener closes, the mapping is deleted from miniupnpd. The control: the same pair
 * without --port-mapping does not connect.
 */

const PRIMARY = '198.51.100.10';
const ALTERNATE = '198.51.100.11';
const SERVER_URL = `ws://${PRIMARY}:8080/`;

interface Event { event: string; [key: string]: unknown }
const events = (text: string, name: string): Event[] =>
  text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Event).filter((e) => e.event === name);

// The second pair is issue 9's acceptance case: symmetric-random on both sides, one with port mapping.
for (const kind of ['port-restricted', 'symmetric-random'] as const) test(`${kind} with miniupnpd × symmetric-random: the mapped candidate connects direct-udp, and close deletes the mapping`, { timeout: 240_000 }, async (t) => {
  if (skipUnlessLab(t) || skipUnlessInstalled(t, ['miniupnpd'], 'apt-get install -y miniupnpd-nftables')) return;
  const dir = await mkdtemp(join(tmpdir(), 'natpunch-portmap-'));
  try {
    await withLab({ a: { kind, miniupnpd: true }, b: { kind: 'symmetric-random' } }, async (lab) => {
      const router = lab.routers.a!;
      const serve = await startServe(lab.server, PRIMARY, ALTERNATE, ['--http-port', '8080', '--no-relay']);
      let listen: ProcessOutput | undefined;
      try {
        const miniupnpd = await router.startMiniupnpd({ stunHost: PRIMARY, stunPort: 3478 });
        try {
          listen = new ProcessOutput(lab.hosts.a1!.spawn(['sh', '-c', `echo from-listener | exec ${natpunch('listen', '--server', SERVER_URL, '--key', join(dir, 'l.key'), '--once', '--port-mapping', '--json').map((a) => `'${a}'`).join(' ')}`]), 'natpunch listen --port-mapping in a1');
          const [mappedLine, readyLine] = await listen.waitFor([/"event":"port-mapping(-failed)?"/, /"event":"ready"/], 30_000);
          const mapped = JSON.parse(mappedLine!) as Event;
          assert.equal(mapped.event, 'port-mapping', `the listener could not map its port: ${mappedLine}`);
          assert.equal(mapped.method, 'pcp');
          assert.match(String(mapped.external), new RegExp(`^${router.wanAddress.replaceAll('.', '\\.')}:\\d+$`));
          const externalPort = Number(String(mapped.external).split(':')[1]);
          const listed = parseMiniupnpdRedirects((await router.exec(['nft', 'list', 'chain', 'inet', 'miniupnpd', 'prerouting_miniupnpd'], { timeoutMs: 20_000 })).stdout);
          assert.ok(listed.some((r) => r.protocol === 'UDP' && r.externalPort === externalPort), JSON.stringify(listed));
          const id = String((JSON.parse(readyLine!) as Event).id);

          const connect = await lab.hosts.b1!.exec(['sh', '-c', `echo from-connector | exec ${natpunch('connect', id, '--server', SERVER_URL, '--key', join(dir, 'c.key'), '--transport', 'udp', '--json').map((a) => `'${a}'`).join(' ')}`], { timeoutMs: 90_000 });
          assert.equal(connect.code, 0, `connect failed: ${connect.stderr}`);
          assert.match(connect.stdout, /from-listener/);
          const [connected] = events(connect.stderr, 'connected');
          assert.ok(connected, connect.stderr);
          assert.equal(connected.path, 'direct-udp', connect.stderr);
          assert.equal(connected.technique, 'udp-port-mapping', connect.stderr);
          assert.equal(connected.remote, mapped.external, 'the connector talks to the mapped endpoint');

          const output = await listen.ended(60_000);
          assert.equal(listen.exit, 'exit 0', output);
          assert.match(output, /from-connector/);
          // The listener deleted its mapping when it closed.
          const after = parseMiniupnpdRedirects((await router.exec(['nft', 'list', 'chain', 'inet', 'miniupnpd', 'prerouting_miniupnpd'], { timeoutMs: 20_000 })).stdout);
          assert.ok(!after.some((r) => r.protocol === 'UDP' && r.externalPort === externalPort), `mapping ${externalPort} left behind: ${JSON.stringify(after)}`);

          // Control: without --port-mapping this pair has no direct path (and the relay is off).
          listen = new ProcessOutput(lab.hosts.a1!.spawn(natpunch('listen', '--server', SERVER_URL, '--key', join(dir, 'l2.key'), '--once', '--json')), 'natpunch listen in a1');
          const [plainReady] = await listen.waitFor([/"event":"ready"/], 30_000);
          assert.doesNotMatch(listen.text, /port-mapping/);
          const plain = await lab.hosts.b1!.exec(natpunch('connect', String((JSON.parse(plainReady!) as Event).id), '--server', SERVER_URL, '--key', join(dir, 'c.key'), '--transport', 'udp', '--json'), { timeoutMs: 90_000 });
          assert.equal(plain.code, 1, `without a port mapping, ${kind} × symmetric-random should not connect directly: ${plain.stderr}`);
        } finally {
          await miniupnpd.stop();
        }
      } finally {
        if (listen) await stopProcess(listen.child);
        await serve.stop();
      }
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/**
 * Double NAT: router a sits behind a carrier NAT. miniupnpd's STUN check finds the NAT in front
 * of it and refuses to forward (it would report the carrier's public address, so the address
 * alone cannot tell). The listener reports the refusal, then connects as if it had never asked.
 */
test('behind a carrier NAT, miniupnpd refuses: the peer reports port-mapping-failed and still connects by punching', { timeout: 240_000 }, async (t) => {
  if (skipUnlessLab(t) || skipUnlessInstalled(t, ['miniupnpd'], 'apt-get install -y miniupnpd-nftables')) return;
  const dir = await mkdtemp(join(tmpdir(), 'natpunch-portmap-'));
  try {
    await withLab({ a: { kind: 'port-restricted', carrier: 'port-restricted', miniupnpd: true }, b: { kind: 'port-restricted' } }, async (lab) => {
      const serve = await startServe(lab.server, PRIMARY, ALTERNATE, ['--http-port', '8080', '--no-relay']);
      let listen: ProcessOutput | undefined;
      try {
        const miniupnpd = await lab.routers.a!.startMiniupnpd({ stunHost: PRIMARY, stunPort: 3478 });
        try {
          assert.match(miniupnpd.log(), /Port forwarding is now disabled/);
          listen = new ProcessOutput(lab.hosts.a1!.spawn(['sh', '-c', `echo from-listener | exec ${natpunch('listen', '--server', SERVER_URL, '--key', join(dir, 'l.key'), '--once', '--port-mapping', '--json').map((a) => `'${a}'`).join(' ')}`]), 'natpunch listen --port-mapping in a1');
          const [failedLine, readyLine] = await listen.waitFor([/"event":"port-mapping(-failed)?"/, /"event":"ready"/], 30_000);
          const failed = JSON.parse(failedLine!) as Event;
          assert.equal(failed.event, 'port-mapping-failed', failedLine);
          assert.equal(failed.reason, 'refused', failedLine);
          assert.match(String(failed.message), /NO_RESOURCES.*found a NAT in front of it/);
          const id = String((JSON.parse(readyLine!) as Event).id);
          const connect = await lab.hosts.b1!.exec(natpunch('connect', id, '--server', SERVER_URL, '--key', join(dir, 'c.key'), '--transport', 'udp', '--json'), { timeoutMs: 90_000 });
          assert.equal(connect.code, 0, `connect failed: ${connect.stderr}`);
          assert.match(connect.stdout, /from-listener/);
          const [connected] = events(connect.stderr, 'connected');
          assert.equal(connected?.path, 'direct-udp', connect.stderr);
          assert.equal(connected?.technique, 'udp-hole-punch', connect.stderr);
          await listen.ended(60_000);
          assert.equal(listen.exit, 'exit 0', listen.text);
        } finally {
          await miniupnpd.stop();
        }
      } finally {
        if (listen) await stopProcess(listen.child);
        await serve.stop();
      }
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
