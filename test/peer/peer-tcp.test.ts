import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runInPrivateLoopback, skipUnlessNetns } from '../support/netns-loopback.js';

// On loopback both peers take TCP connections (the server's dial-back reaches both), so the
// initiator dials the other's listener (path-choice.ts); simultaneous open through NATs is
// test/lab/connect-tcp.test.ts and the sim's connect matrix.
test('two reachable peers connect with transport tcp: direct-tcp by dialing the listener, Noise-authenticated, 1 MiB each way intact', { timeout: 90_000 }, async (t) => {
  if (skipUnlessNetns(t)) return;
  const result = await runInPrivateLoopback('peers');
  assert.equal(result['error'], undefined, String(result['error']));
  for (const address of result['tcpPublicAddress'] as string[]) assert.match(address, /^127\.0\.0\.1:\d+$/, 'each peer learned its TCP mapping');
  assert.deepEqual(result['path'], ['direct-tcp', 'direct-tcp']);
  assert.deepEqual(result['technique'], ['tcp-reversal', 'tcp-reversal']);
  assert.deepEqual(result['ids'], [true, true]);
  assert.equal(result['aToB'], true);
  assert.equal(result['bToA'], true);
});
