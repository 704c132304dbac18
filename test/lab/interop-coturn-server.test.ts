import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withLab, type NatKind, type RouterOptions } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { startTurnserver } from '../support/coturn.js';
import { assertCheckMatchesLab } from '../support/nat-report.js';
import { skipUnlessInstalled } from '../support/process.js';

/**
 * Interop: `natpunch check` against coturn's turnserver instead of our own server. coturn runs
 * RFC 5780 on two addresses (alternate port = listening port + 1) and answers in its own way —
 * it adds MAPPED-ADDRESS, and its OTHER-ADDRESS is always the one alternate endpoint, whichever
 * endpoint answered — so this shows check relies only on what RFC 5780 guarantees.
 */

const PRIMARY = '198.51.100.10';
const ALTERNATE = '198.51.100.11';

/** Every kind once; a hairpins, b not. udp-blocked alone: no second kind is left for it. */
const labs: [NatKind, NatKind | null][] = [
  ['full-cone', 'restricted-cone'],
  ['port-restricted', 'symmetric-random'],
  ['open', 'symmetric-firewall'],
  ['symmetric-seq', 'eim-random-port'],
  ['udp-blocked', null],
];

for (const [kindA, kindB] of labs) {
  const which = kindB === null ? `${kindA} (hairpin on)` : `${kindA} (hairpin on) and ${kindB} (hairpin off)`;
  test(`check against coturn's turnserver reports ${which} as built`, { timeout: 120_000 }, async (t) => {
    if (skipUnlessLab(t) || skipUnlessInstalled(t, ['turnserver'], 'apt-get install -y coturn')) return;
    const b: RouterOptions | undefined = kindB === null ? undefined : { kind: kindB, hairpin: false };
    await withLab({ a: { kind: kindA, hairpin: true }, b }, async (lab) => {
      const coturn = await startTurnserver(lab.server, [PRIMARY, ALTERNATE]);
      try {
        // coturn's alternate endpoint: the other address with the listening port + 1.
        const otherAddress = `${ALTERNATE}:3479`;
        assert.ok(coturn.endpoints.includes(otherAddress));
        const checks = [assertCheckMatchesLab(lab, 'a', PRIMARY, { hairpin: true, otherAddress })];
        if (kindB !== null) checks.push(assertCheckMatchesLab(lab, 'b', PRIMARY, { hairpin: false, otherAddress }));
        await Promise.all(checks);
      } finally {
        await coturn.stop();
      }
    });
  });
}
