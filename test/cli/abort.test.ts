import { test } from 'node:test';
import { join } from 'node:path';
import { ABORT_CASES, abortMidTransfer } from '../support/abort-scenario.js';
import { loopbackServer, scratch, startCli } from '../support/loopback-cli.js';

/**
 * Ctrl-C on either side of a transfer reaches the other side at once (a RESET inside the sealed
 * stream), which reports ERR_PEER_ABORTED and exits 1 within a second; the side interrupted exits
 * with the shell's code for the signal.
 */
for (const c of ABORT_CASES) {
  test(`${c.signal} on ${c.aborting} mid-transfer: the other side exits 1 with ERR_PEER_ABORTED within 1 s; ${c.aborting} exits ${c.code}`, async (t) => {
    const server = await loopbackServer(t);
    const dir = await scratch(t);
    await abortMidTransfer(c,
      () => startCli(t, 'listen', ['listen', '--server', server, '--key', join(dir, 'l.key'), '--once', '--json']),
      (id) => startCli(t, 'connect', ['connect', id, '--server', server, '--key', join(dir, 'c.key'), '--json']));
  });
}
