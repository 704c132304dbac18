import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withLab, type NatKind } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { startServe, transfer } from '../support/peers.js';

/**
 * Acceptance (issue 9, birthday probing): a peer behind symmetric-random (a new random port per
 * destination) and one behind an endpoint-independent mapping connect directly over UDP in at
 * least 19 of 20 runs (src/punch/birthday.ts: 256 sockets on the hard side, up to 2,048 paced
 * probes from the easy side; the odds of a miss are about 3 in 10,000 per run). Without it, the
 * port-restricted and eim-random-port pairs never connect directly (NATLAB-FACTS: "port-
 * restricted × symmetric random fails"). Twenty connects per pair in one lab, fresh keys each,
 * the symmetric side connecting in half of them; 4 KiB each way checked every time.
 *
 * A restricted cone admits every port of an address it has sent to, so there plain hole punching
 * works (NATLAB-FACTS: restricted cone × symmetric works) and completes before birthday probing
 * would start (BIRTHDAY_AFTER_MS): both sides report udp-hole-punch, and no probe is spent.
 */
const RUNS = 20;
const REQUIRED = 19;

for (const easy of ['port-restricted', 'eim-random-port', 'restricted-cone'] as NatKind[]) {
  test(`symmetric-random × ${easy}, --transport udp: direct-udp by ${easy === 'restricted-cone' ? 'plain hole punching' : 'birthday probing'} in at least ${REQUIRED} of ${RUNS} runs`, { timeout: 600_000 }, async (t) => {
    if (skipUnlessLab(t)) return;
    await withLab({ a: { kind: 'symmetric-random' }, b: { kind: easy } }, async (lab) => {
      await startServe(lab);
      const outcomes: string[] = [];
      for (let run = 0; run < RUNS; run++) {
        const [listenHost, connectHost] = run % 2 === 0 ? ['b1', 'a1'] : ['a1', 'b1'];
        try {
          const { connector, listener } = await transfer(lab, listenHost, connectHost, 4096, ['--transport', 'udp']);
          outcomes.push(`${connector.path}/${connector.technique} ${listener.path}/${listener.technique} ${connector.ms} ms`);
        } catch (error) {
          outcomes.push(`failed: ${(error as Error).message.split('\n')[0]}`);
        }
      }
      const expected = easy === 'restricted-cone' ? /^direct-udp\/udp-hole-punch direct-udp\/udp-hole-punch/ : /^direct-udp\/udp-birthday direct-udp\/udp-birthday/;
      const direct = outcomes.filter((o) => expected.test(o)).length;
      t.diagnostic(outcomes.join('\n'));
      assert.ok(direct >= REQUIRED, `${direct} of ${RUNS} connected direct (${expected}):\n${outcomes.join('\n')}`);
    });
  });
}
