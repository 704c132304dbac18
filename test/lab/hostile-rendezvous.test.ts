import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { withLab } from '../../src/lab/index.js';
import { generateIdentity } from '../../src/identity/index.js';
import { natpunch, waitForLine } from '../support/cli.js';
import { skipUnlessLab } from '../support/lab.js';

const HOSTILE = fileURLToPath(new URL('../rendezvous/hostile-server.js', import.meta.url));
const VICTIM = '198.51.100.99';

/**
 * Acceptance (issue 3): a rendezvous server that forges punch instructions — re-signed, tampered
 * or unsigned accepts naming a victim's address — makes the peer send 0 packets toward it,
 * counted by nftables on the peer's NAT router as they would leave for the internet.
 */
for (const mode of ['resign', 'tamper', 'unsigned'] as const) {
  test(`a hostile rendezvous (${mode} forgery) cannot aim a peer at a victim: 0 packets leave for it`, { timeout: 120_000 }, async (t) => {
    if (skipUnlessLab(t)) return;
    await withLab({ a: { kind: 'full-cone' } }, async (lab) => {
      const router = lab.routers.a!;
      await router.addCounter('to-victim', `ip daddr ${VICTIM}`);
      const hostile = lab.server.spawn([process.execPath, HOSTILE, '--serve', '--host', '198.51.100.10', '--port', '8080',
        '--forge', `${VICTIM}:4000,${VICTIM}:4001`, '--mode', mode]);
      await waitForLine(hostile, /ready ws:/);
      const target = generateIdentity().peerId;
      const connect = await lab.hosts.a1!.exec(natpunch('connect', target, '--server', 'ws://198.51.100.10:8080/', '--key', `/tmp/np-hostile-${lab.prefix}.key`, '--json'), { timeoutMs: 90_000 });
      assert.notEqual(connect.code, 0, 'connect must fail: the accept is forged');
      assert.match(connect.stderr, /"event":"error"/);
      assert.equal((await router.counter('to-victim')).packets, 0, 'the peer sent packets toward the forged address');

      // The counter is live: one datagram a1 really sends to the victim is counted.
      const probe = await lab.hosts.a1!.exec([process.execPath, '-e',
        `const s=require('node:dgram').createSocket('udp4');s.send(Buffer.from('x'),4000,'${VICTIM}',()=>s.close())`], { timeoutMs: 20_000 });
      assert.equal(probe.code, 0, probe.stderr);
      assert.equal((await router.counter('to-victim')).packets, 1);
    });
  });
}
