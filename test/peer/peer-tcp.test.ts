import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runInPrivateLoopback, skipUnlessNetns } from '../support/netns-loopback.js';

test('two peers connect with transport tcp: direct-tcp by simultaneous open, Noise-authenticated, 1 MiB each way intact', { timeout: 90_000 }, async (t) => {
  if (skipUnlessNetns(t)) return;
  const result = await runInPrivateLoopback('peers');
  assert.equal(result['error'], undefined, String(result['error']));
  for (const address of result['tcpPublicAddress'] as string[]) assert.match(address, /^127\.0\.0\.1:\d+$/, 'each peer learned its TCP mapping');
  assert.deepEqual(result['path'], ['direct-tcp', 'direct-tcp']);
  assert.deepEqual(result['technique'], ['tcp-simultaneous-open', 'tcp-simultaneous-open']);
  assert.deepEqual(result['ids'], [true, true]);
  assert.equal(result['aToB'], true);
  assert.equal(result['bToA'], true);
});
