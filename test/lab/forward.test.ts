import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withLab } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { SERVER_URL, startServe } from '../support/peers.js';
import { assertForwarded, connectedEvent, startForwarding } from '../support/forward.js';

/**
 * Acceptance (issue 10, "Port forwarding"): through two port-restricted NATs, an HTTP server
 * exposed in b1 serves 4 parallel downloads of an 8 MiB file through `natpunch forward` in a1,
 * all intact, while an interactive request/response session beside them keeps answering.
 */
test('port-restricted × port-restricted: 4 parallel 8 MiB downloads through forward intact, interactive session answering beside them', { timeout: 300_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  const dir = await mkdtemp(join(tmpdir(), 'natpunch-forward-lab-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await withLab({ a: { kind: 'port-restricted' }, b: { kind: 'port-restricted' } }, async (lab) => {
    await startServe(lab);
    const bytes = 8 << 20;
    const run = await startForwarding({ exposing: lab.hosts['b1']!, forwarding: lab.hosts['a1']! }, SERVER_URL, dir, bytes);
    try {
      assert.equal(connectedEvent(run.forward)?.['path'], 'direct-udp', run.forward.stderr());
      const report = await run.client(4);
      t.diagnostic(`4 × 8 MiB in ${report.bulkMs} ms; ${report.duringBulk} round trips meanwhile, slowest ${Math.max(...report.roundTrips)} ms`);
      assertForwarded(report, run.service, bytes, 4, 2_000);
    } finally {
      await run.stop();
    }
  });
});
