import { test } from 'node:test';
import { join } from 'node:path';
import { withLab } from '../../src/lab/index.js';
import { ABORT_CASES, abortMidTransfer } from '../support/abort-scenario.js';
import { natpunch } from '../support/cli.js';
import { skipUnlessLab } from '../support/lab.js';
import { cliChild, scratch } from '../support/loopback-cli.js';
import { SERVER_URL, startServe } from '../support/peers.js';

/**
 * Acceptance (issue 10): through two port-restricted NATs, Ctrl-C (or SIGTERM) on either side
 * mid-transfer: the other side exits 1 within 1 s with ERR_PEER_ABORTED.
 */
test('through two port-restricted NATs: an interrupt on either side stops the other within 1 s with ERR_PEER_ABORTED', { timeout: 240_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  const dir = await scratch(t);
  await withLab({ a: { kind: 'port-restricted' }, b: { kind: 'port-restricted' } }, async (lab) => {
    await startServe(lab, '--no-relay');
    for (const [i, c] of ABORT_CASES.entries()) {
      await t.test(`${c.signal} on ${c.aborting}`, async (st) => {
        await abortMidTransfer(c,
          () => cliChild(st, lab.hosts['b1']!.spawn(natpunch('listen', '--server', SERVER_URL, '--key', join(dir, `l${i}.key`), '--once', '--json')), 'listen'),
          (id) => cliChild(st, lab.hosts['a1']!.spawn(natpunch('connect', id, '--server', SERVER_URL, '--key', join(dir, `c${i}.key`), '--json')), 'connect'));
      });
    }
  });
});
