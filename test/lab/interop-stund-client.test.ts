import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withLab, natTruth, type NatKind, type Rfc3489Class } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { startServe } from '../support/peers.js';
import { skipUnlessInstalled } from '../support/process.js';

/**
 * Interop with a classic RFC 3489 client: `stun` from Debian's stun-client (Vovida's stund
 * 0.97) sends Binding requests without the magic cookie and runs the RFC 3489 §10.1 NAT-type
 * tests itself, reading MAPPED-ADDRESS, SOURCE-ADDRESS and CHANGED-ADDRESS from `natpunch
 * serve` (RFC 8489 §11 backwards compatibility). Behind each lab NAT its verdict must be the
 * RFC 3489 class the lab built, and its hairpin test must match the router's setting.
 */

const INSTALL_HINT = 'apt-get install -y stun-client';

/** stund's "Primary:" verdicts, by the RFC 3489 class they name. */
const VERDICTS: Record<Rfc3489Class, RegExp> = {
  'open-internet': /^Open\b/,
  'full-cone': /^Independent Mapping, Independent Filter\b/,
  'restricted-cone': /^Independent Mapping, Address Dependent Filter\b/,
  'port-restricted-cone': /^Independent Mapping, Port Dependent Filter\b/,
  symmetric: /^Dependent Mapping\b/,
  'symmetric-udp-firewall': /^Firewall\b/,
  'udp-blocked': /^Blocked\b/,
};

/** Two kinds per lab: router a hairpins, router b does not. */
const pairs: [NatKind, NatKind][] = [
  ['full-cone', 'restricted-cone'],
  ['port-restricted', 'symmetric-random'],
  ['eim-random-port', 'symmetric-seq'],
  ['open', 'symmetric-firewall'],
  ['full-cone', 'udp-blocked'],
];

for (const [kindA, kindB] of pairs) {
  test(`stund's RFC 3489 client classifies ${kindA} (hairpin on) and ${kindB} (hairpin off) through natpunch serve`, { timeout: 120_000 }, async (t) => {
    if (skipUnlessLab(t) || skipUnlessInstalled(t, ['stun'], INSTALL_HINT)) return;
    await withLab({ a: { kind: kindA, hairpin: true }, b: { kind: kindB } }, async (lab) => {
      await startServe(lab);
      for (const [host, kind, hairpin] of [['a1', kindA, true], ['b1', kindB, false]] as const) {
        const run = await lab.hosts[host]!.exec(['stun', '198.51.100.10'], { timeoutMs: 60_000 });
        const output = run.stdout + run.stderr;
        const primary = /Primary: ([^\n]*)/.exec(output)?.[1]?.trim();
        assert.ok(primary, `${host} (${kind}): stund printed no verdict:\n${output}`);
        const truth = natTruth(kind);
        assert.match(primary, VERDICTS[truth.rfc3489], `${host} behind ${kind}`);
        // The hairpin test needs a mapping to send to, so it is reported only where UDP gets through a NAT.
        if (truth.natted && truth.rfc3489 !== 'udp-blocked') {
          assert.match(primary, hairpin ? /will hairpin/ : /no hairpin/, `${host} behind ${kind}, hairpin ${hairpin ? 'on' : 'off'}`);
        }
      }
    });
  });
}
