/**
 * Interop (issue 8): natpunch peers relay through coturn instead of natpunch's own relay. An
 * operator who already runs coturn starts `natpunch serve --no-relay --relay turn:HOST:PORT
 * --turn-secret SECRET`; the rendezvous hands each registered peer coturn REST credentials
 * (`expiry:peer`, base64 HMAC-SHA1 of the secret), and two peers that cannot reach each other
 * directly meet through coturn's allocations — which see only Noise ciphertext.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { withLab } from '../../src/lab/index.js';
import { startTurnRelay } from '../support/coturn.js';
import { skipUnlessLab } from '../support/lab.js';
import { skipUnlessInstalled } from '../support/process.js';
import { startServe, transfer } from '../support/peers.js';

/** The lab server's address; natpunch's own STUN has 3478 and 3479, coturn gets another port. */
const SERVER = '198.51.100.10';
const COTURN_PORT = 3490;

test('symmetric-random × symmetric-random with `serve --relay turn:` (coturn 4.6.1, --use-auth-secret): relayed through coturn, 8 MiB each way intact', { timeout: 240_000 }, async (t) => {
  if (skipUnlessLab(t) || skipUnlessInstalled(t, ['turnserver'], 'apt-get install -y coturn')) return;
  await withLab({ a: { kind: 'symmetric-random' }, b: { kind: 'symmetric-random' } }, async (lab) => {
    const secret = randomBytes(16).toString('hex');
    const coturn = await startTurnRelay({
      at: { host: lab.server, address: SERVER, port: COTURN_PORT },
      extra: ['--use-auth-secret', `--static-auth-secret=${secret}`],
    });
    try {
      await startServe(lab, '--no-relay', '--relay', `turn:${SERVER}:${COTURN_PORT}`, '--turn-secret', secret);
      const { listener, connector } = await transfer(lab, 'b1', 'a1', 8 << 20);
      assert.equal(connector['path'], 'relay', JSON.stringify(connector));
      assert.equal(listener['path'], 'relay', JSON.stringify(listener));
      assert.equal(connector['technique'], 'turn-udp');
      // Both peers' allocations were coturn's: its log shows each one allocated and bound a channel.
      const text = coturn.output.text;
      const allocations = text.match(/ALLOCATE processed, success/g) ?? [];
      assert.ok(allocations.length >= 2, `coturn allocated ${allocations.length} time(s); its log:\n${text.slice(-4000)}`);
      assert.match(text, /CHANNEL_BIND processed, success/, 'no channel bound on coturn');
    } finally {
      await coturn.stop();
    }
  });
});
