import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PortPredictor } from '../../src/peer/port-predictor.js';
import { SERVER_ADDRESSES } from '../../src/lab/topology.js';
import { STUN_PORT, createSimLab, startSimStunServer } from '../../src/sim/topology.js';
import type { TransportAddress } from '../../src/wire/index.js';

const server: TransportAddress = { family: 4, address: SERVER_ADDRESSES[0], port: STUN_PORT };

/**
 * Behind symmetric-random the classification takes two steps: the samples (the pattern, one
 * round trip), then the mapping test toward the server's other address (RFC 5780 §4.3, two
 * more). An offer signs natMapping after its candidates (rendezvous/client.ts), so a candidate
 * asked for in between must wait for the mapping test too, or the offer goes out without
 * natMapping and birthday probing never starts (the sim's connect matrix caught one at 40 ms RTT).
 */
test('PortPredictor: a candidate asked for after the samples but before the mapping test waits for it, so randomPerDestination is known when the offer reads it', async () => {
  // 20 ms each way between the client and the server: the mapping test takes 80 ms after the samples.
  const lab = createSimLab({ a: { kind: 'symmetric-random', wan: { latencyMs: 10 } }, serverLink: { latencyMs: 10 } });
  const stun = await startSimStunServer(lab);
  const predictor = new PortPredictor({ createSocket: lab.socketFactory('a1'), clock: lab.clock });
  const classified = predictor.classify(server);
  for (let i = 0; i < 1_000 && predictor.pattern === undefined; i++) await lab.clock.advance(1);
  assert.deepEqual(predictor.pattern, { kind: 'other' });
  assert.equal(predictor.randomPerDestination, false, 'the mapping test is still out');
  assert.equal(await lab.clock.run(predictor.candidate(server, '203.0.113.10')), undefined, 'random ports: nothing to predict');
  assert.equal(predictor.randomPerDestination, true);
  await lab.clock.run(classified);
  predictor.close();
  await lab.clock.run(stun.close());
});
