import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withLab, type Lab, type LabOptions } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { natpunch } from '../support/cli.js';
import { startServe } from '../support/serve.js';
import { ProcessOutput, skipUnlessInstalled, stopProcess } from '../support/process.js';
import { parseMiniupnpdRedirects } from '../support/miniupnp.js';

/**
 * Peers with --port-mapping behind a lab NAT running miniupnpd, against a peer behind
 * symmetric-random, with the relay off. Punching alone fails for these pairs (NATLAB-FACTS:
 * port-restricted × symmetric random needs birthday probing; symmetric × symmetric has no hope).
 * The listener's gateway maps its UDP port and it signs the mapping as a `mapped` candidate. The
 * mapping also makes it directly reachable (the server's dial-back from its other address now
 * arrives), so the connector dials the mapped endpoint without punching: `direct-udp` by
 * `udp-port-mapping`. When the listener closes, the mapping is deleted from miniupnpd. The
 * control: the same pair without --port-mapping does not connect. And behind a carrier NAT,
 * where miniupnpd refuses, the failure is reported and the peer connects as if it never asked.
 */

const PRIMARY = '198.51.100.10';
const ALTERNATE = '198.51.100.11';
const SERVER_URL = `ws://${PRIMARY}:8080/`;

interface Event { event: string; [key: string]: unknown }
const events = (text: string, name: string): Event[] =>
  text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Event).filter((e) => e.event === name);

/** connect exited 0 with the listener's bytes, `direct-udp` by `technique`; its connected event. */
function expectDirect(connect: { code: number | null; stdout: string; stderr: string }, technique: string): Event {
  assert.equal(connect.code, 0, `connect failed: ${connect.stderr}`);
  assert.match(connect.stdout, /from-listener/);
  const [connected] = events(connect.stderr, 'connected');
  assert.equal(connected?.path, 'direct-udp', connect.stderr);
  assert.equal(connected.technique, technique, connect.stderr);
  return connected;
}

interface Scene {
  lab: Lab;
  miniupnpdLog(): string;
  /** `natpunch listen --once --json` in a1 (stdin: "from-listener"); resolves with its output and its first port-mapping(-failed) and ready events. */
  listen(key: string, portMapping: boolean): Promise<{ output: ProcessOutput; mapping: Event | undefined; id: string }>;
  /** `natpunch connect --transport udp --json` from b1 (stdin: "from-connector"). */
  connect(id: string): Promise<{ code: number | null; stdout: string; stderr: string }>;
  redirects(): Promise<ReturnType<typeof parseMiniupnpdRedirects>>;
}

/** A lab with `natpunch serve` (no relay) and miniupnpd in router a; everything stopped afterwards. */
async function withMiniupnpdLab(t: TestContext, options: LabOptions, fn: (scene: Scene) => Promise<void>): Promise<void> {
  if (skipUnlessLab(t) || skipUnlessInstalled(t, ['miniupnpd'], 'apt-get install -y miniupnpd-nftables')) return;
  const dir = await mkdtemp(join(tmpdir(), 'natpunch-portmap-'));
  const children: ProcessOutput[] = [];
  try {
    await withLab(options, async (lab) => {
      const serve = await startServe(lab.server, PRIMARY, ALTERNATE, ['--http-port', '8080', '--no-relay']);
      try {
        const miniupnpd = await lab.routers.a!.startMiniupnpd({ stunHost: PRIMARY, stunPort: 3478 });
        try {
          await fn({
            lab,
            miniupnpdLog: () => miniupnpd.log(),
            listen: async (key, portMapping) => {
              const argv = natpunch('listen', '--server', SERVER_URL, '--key', join(dir, key), '--once', ...(portMapping ? ['--port-mapping'] : []), '--json');
              const output = new ProcessOutput(lab.hosts.a1!.spawn(['sh', '-c', `echo from-listener | exec ${argv.map((a) => `'${a}'`).join(' ')}`]), `natpunch listen${portMapping ? ' --port-mapping' : ''} in a1`);
              children.push(output);
              const [readyLine] = await output.waitFor([/"event":"ready"/], 30_000);
              // listen prints the port mapping's outcome before ready.
              const mapping = events(output.text, 'port-mapping')[0] ?? events(output.text, 'port-mapping-failed')[0];
              return { output, mapping, id: String((JSON.parse(readyLine!) as Event).id) };
            },
            connect: (id) => lab.hosts.b1!.exec(['sh', '-c', `echo from-connector | exec ${natpunch('connect', id, '--server', SERVER_URL, '--key', join(dir, 'c.key'), '--transport', 'udp', '--json').map((a) => `'${a}'`).join(' ')}`], { timeoutMs: 90_000 }),
            redirects: async () => parseMiniupnpdRedirects((await lab.routers.a!.exec(['nft', 'list', 'chain', 'inet', 'miniupnpd', 'prerouting_miniupnpd'], { timeoutMs: 20_000 })).stdout),
          });
        } finally {
          for (const child of children) await stopProcess(child.child);
          await miniupnpd.stop();
        }
      } finally {
        await serve.stop();
      }
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// The second pair is issue 9's acceptance case: symmetric-random on both sides, one with port mapping.
for (const kind of ['port-restricted', 'symmetric-random'] as const) {
  test(`${kind} with miniupnpd × symmetric-random: the mapped candidate connects direct-udp, and close deletes the mapping`, { timeout: 240_000 }, (t) =>
    withMiniupnpdLab(t, { a: { kind, miniupnpd: true }, b: { kind: 'symmetric-random' } }, async (scene) => {
      const router = scene.lab.routers.a!;
      const listener = await scene.listen('l.key', true);
      const mapped = listener.mapping;
      assert.equal(mapped?.event, 'port-mapping', `the listener could not map its port: ${listener.output.text}`);
      assert.equal(mapped.method, 'pcp');
      assert.match(String(mapped.external), new RegExp(`^${router.wanAddress.replaceAll('.', '\\.')}:\\d+$`));
      const externalPort = Number(String(mapped.external).split(':')[1]);
      assert.ok((await scene.redirects()).some((r) => r.protocol === 'UDP' && r.externalPort === externalPort));

      const connected = expectDirect(await scene.connect(listener.id), 'udp-port-mapping');
      assert.equal(connected.remote, mapped.external, 'the connector talks to the mapped endpoint');

      await listener.output.ended(60_000);
      assert.equal(listener.output.exit, 'exit 0', listener.output.text);
      assert.match(listener.output.text, /from-connector/);
      // The listener deleted its mapping when it closed.
      const after = await scene.redirects();
      assert.ok(!after.some((r) => r.protocol === 'UDP' && r.externalPort === externalPort), `mapping ${externalPort} left behind: ${JSON.stringify(after)}`);

      // Control, without --port-mapping (and with the relay off): symmetric-random × symmetric-random
      // has no direct path; port-restricted × symmetric-random has one, by birthday probing
      // (connect-birthday), which the mapped candidate made unnecessary above.
      const plain = await scene.listen('l2.key', false);
      assert.equal(plain.mapping, undefined);
      const control = await scene.connect(plain.id);
      if (kind === 'symmetric-random') assert.equal(control.code, 1, `without a port mapping, symmetric-random × symmetric-random should not connect directly: ${control.stderr}`);
      else expectDirect(control, 'udp-birthday');
    }));
}

/**
 * Double NAT: router a sits behind a carrier NAT. miniupnpd's STUN check finds the NAT in front
 * of it and refuses to forward (it would report the carrier's public address, so the address
 * alone cannot tell). The listener reports the refusal, then connects as if it had never asked.
 */
test('behind a carrier NAT, miniupnpd refuses: the peer reports port-mapping-failed and still connects by punching', { timeout: 240_000 }, (t) =>
  withMiniupnpdLab(t, { a: { kind: 'port-restricted', carrier: 'port-restricted', miniupnpd: true }, b: { kind: 'port-restricted' } }, async (scene) => {
    assert.match(scene.miniupnpdLog(), /Port forwarding is now disabled/);
    const listener = await scene.listen('l.key', true);
    assert.equal(listener.mapping?.event, 'port-mapping-failed', listener.output.text);
    assert.equal(listener.mapping.reason, 'refused', listener.output.text);
    assert.match(String(listener.mapping.message), /NO_RESOURCES.*found a NAT in front of it/);
    expectDirect(await scene.connect(listener.id), 'udp-hole-punch');
    await listener.output.ended(60_000);
    assert.equal(listener.output.exit, 'exit 0', listener.output.text);
  }));
