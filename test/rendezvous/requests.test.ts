/**
 * Request/response correlation: every peer message carries an id, and the server's answer or
 * error about it echoes the id, so several connect()s and an update can be in flight on one
 * connection and each settles with its own answer.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { AbortedError } from '../../src/errors.js';
import { generateIdentity } from '../../src/identity/index.js';
import {
  type AckMessage, type ChallengeMessage, MAX_REQUESTS_IN_FLIGHT, PendingRequests, RendezvousError,
} from '../../src/rendezvous/index.js';
import { Resources, startPeer, startServers } from './helpers.js';

const resources = new Resources();
afterEach(() => resources.close());

test('answers settle the request with their id, in any order; an error rejects only its own', async () => {
  const requests = new PendingRequests();
  const first = requests.issue<AckMessage>('ack');
  const second = requests.issue<ChallengeMessage>('challenge');
  const third = requests.issue('ack');
  assert.deepEqual([first.id, second.id, third.id], [1, 2, 3]);
  assert.equal(requests.settle({ type: 'ack', id: 3 }), true);
  assert.equal(requests.settle({ type: 'ack', id: 2 }), false, 'an answer of the wrong type does not settle a request');
  assert.equal(requests.settle({ type: 'error', code: 'trickle-limit', message: 'no', id: 1, ref: 'S' }), true);
  assert.equal(requests.settle({ type: 'challenge', id: 2, nonce: 'n', token: 't' }), true);
  assert.equal(requests.settle({ type: 'ack', id: 3 }), false, 'each id is answered once');
  assert.deepEqual(await third.answer, { type: 'ack', id: 3 });
  assert.deepEqual(await second.answer, { type: 'challenge', id: 2, nonce: 'n', token: 't' });
  await assert.rejects(first.answer, (e: unknown) => e instanceof RendezvousError && e.reason === 'trickle-limit' && e.ref === 'S');
  assert.equal(requests.size, 0);
});

test('an abort frees the id; close rejects everything in flight; the number in flight is bounded', async () => {
  const requests = new PendingRequests();
  const controller = new AbortController();
  const aborted = requests.issue('ack', controller.signal);
  const pending = requests.issue('ack');
  controller.abort();
  await assert.rejects(aborted.answer, AbortedError);
  assert.equal(requests.size, 1);
  requests.rejectAll(new RendezvousError('closed', 'gone'));
  await assert.rejects(pending.answer, (e: unknown) => e instanceof RendezvousError && e.reason === 'closed');
  for (let i = 0; i < MAX_REQUESTS_IN_FLIGHT; i++) requests.issue('ack');
  assert.throws(() => requests.issue('ack'), (e: unknown) => e instanceof RendezvousError && e.reason === 'rate-limited');
});

test('several connects and an update in flight at once each settle with their own outcome', async () => {
  const { url } = await startServers(resources);
  const a = await startPeer(resources, url);
  const b = await startPeer(resources, url);
  const c = await startPeer(resources, url);
  const refuses = await startPeer(resources, url, { accept: () => false });
  const slow = await startPeer(resources, url, { accept: () => new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 300)) });
  const missing = generateIdentity().peerId;
  const signal = AbortSignal.timeout(10_000);
  const results = await Promise.allSettled([
    a.client.connect(slow.identity.peerId, { signal }),
    a.client.connect(b.identity.peerId, { signal }),
    a.client.connect(missing, { signal }),
    a.client.updateSrflx({ signal }),
    a.client.connect(refuses.identity.peerId, { signal }),
    a.client.connect(c.identity.peerId, { signal }),
  ]);
  const outcome = (r: PromiseSettledResult<unknown>): string => r.status === 'fulfilled'
    ? (typeof r.value === 'string' ? `srflx ${r.value}` : `punch with ${(r.value as { peer: string }).peer}`)
    : (r.reason as RendezvousError).reason;
  assert.deepEqual(results.map(outcome), [
    `punch with ${slow.identity.peerId}`, `punch with ${b.identity.peerId}`, 'peer-not-found', `srflx ${a.endpoint}`,
    'refused', `punch with ${c.identity.peerId}`,
  ]);
});

test('a connect the server drops for its rate fails at once by its id, while the others go on', async () => {
  // Registration spends one token; the burst leaves two for connects, the third is dropped.
  const { url } = await startServers(resources, { limits: { messagesPerSecond: 1, messageBurst: 3 } });
  const a = await startPeer(resources, url);
  const b = await startPeer(resources, url);
  const c = await startPeer(resources, url);
  const d = await startPeer(resources, url);
  const started = performance.now();
  const signal = AbortSignal.timeout(10_000);
  const results = await Promise.allSettled([b, c, d].map((peer) => a.client.connect(peer.identity.peerId, { signal })));
  assert.deepEqual(results.map((r) => r.status === 'fulfilled' ? 'punch' : (r.reason as RendezvousError).reason), ['punch', 'punch', 'rate-limited']);
  assert.ok(performance.now() - started < 5_000, 'the dropped connect did not wait for its 15 s timeout');
});
