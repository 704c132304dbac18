import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { RendezvousError } from '../../src/rendezvous/errors.js';
import { Resources, registerRaw, startPeer, startServers, until } from '../rendezvous/helpers.js';
import { parsePrometheusText, sampleValue } from '../support/prometheus-text.js';

/**
 * The connect outcomes a pair of polite peers never shows: a limit refusing a connect, a target
 * that vanishes while asked, one that never answers. A real rendezvous server, a real client
 * and a hand-driven target; ServerMetrics on the server as `natpunch serve` puts it.
 */
test('a refused-by-limit, an abandoned and a timed-out connect are each counted once, with the NAT classes proven at registration', { timeout: 60_000 }, async () => {
  const resources = new Resources();
  try {
    const { stun, server, url } = await startServers(resources, { limits: { maxPendingIntents: 1 } });
    const metrics = resources.add(new ServerMetrics({ stun: [stun], rendezvous: server }), (m) => m.close());
    const scrape = async (): Promise<ReturnType<typeof parsePrometheusText>> => parsePrometheusText((await metrics.exposition()).text);

    // A proves its address by STUN, and it is one of its own: "public". The raw targets claim
    // no server-reflexive address: "no-udp".
    const a = await startPeer(resources, url);
    const gone = await registerRaw(resources, url);
    const pending = a.client.connect(gone.identity.peerId, { timeoutMs: 20_000 });
    pending.catch(() => undefined);
    assert.equal((await gone.raw.next()).type, 'incoming');
    // A second connect while one is pending: over maxPendingIntents.
    await assert.rejects(a.client.connect(gone.identity.peerId), (e: unknown) => e instanceof RendezvousError && e.reason === 'too-many-pending');
    // The target leaves while asked.
    gone.raw.ws.terminate();
    await assert.rejects(pending, (e: unknown) => e instanceof RendezvousError && e.reason === 'peer-not-found');

    // A target that never answers: the server ends the session when the intent expires (at least 2 s).
    const silent = await registerRaw(resources, url);
    await assert.rejects(a.client.connect(silent.identity.peerId, { timeoutMs: 300 }), (e: unknown) => e instanceof RendezvousError && e.reason === 'timeout');
    await until(() => server.stats.sessions === 0, 'the server ended the unanswered session');

    const m = await scrape();
    const pair = { initiator_nat: 'public', target_nat: 'no-udp' };
    assert.equal(sampleValue(m, 'natpunch_rendezvous_registrations_total', { nat: 'public' }), 1);
    assert.equal(sampleValue(m, 'natpunch_rendezvous_registrations_total', { nat: 'no-udp' }), 2);
    // The server refused before it looked the target up: its class is not known there.
    assert.equal(sampleValue(m, 'natpunch_rendezvous_connects_total', { outcome: 'refused', reason: 'too-many-pending', initiator_nat: 'public', target_nat: 'unknown' }), 1);
    assert.equal(sampleValue(m, 'natpunch_rendezvous_connects_total', { outcome: 'abandoned', reason: 'target-left', ...pair }), 1);
    assert.equal(sampleValue(m, 'natpunch_rendezvous_connects_total', { outcome: 'timed-out', reason: 'none', ...pair }), 1);
    assert.equal(m.get('natpunch_rendezvous_connects_total')!.samples.length, 3, 'nothing else');
    assert.equal(sampleValue(m, 'natpunch_limits_hit_total', { limit: 'too-many-pending' }), 1);
    assert.equal(sampleValue(m, 'natpunch_limits_hit_total', { limit: 'rate-limited' }), 0);
    assert.equal(sampleValue(m, 'natpunch_rendezvous_errors_total', { code: 'too-many-pending' }), 1);
    assert.equal(m.has('natpunch_turn_allocations'), false, 'no relay, no relay metrics');
  } finally {
    await resources.close();
  }
});
