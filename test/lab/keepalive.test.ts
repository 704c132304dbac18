import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { withLab, type Lab } from '../../src/lab/index.js';
import { skipUnlessLab } from '../support/lab.js';
import { CLI } from '../support/cli.js';
import { SERVER_URL, startServe } from '../support/peers.js';
import { type EventChild, eventChild } from '../support/json-events.js';

/**
 * Acceptance: keepalives sized to the measured mapping lifetime. The listener sits behind an
 * EIM NAT that picks a random port for every new mapping and forgets idle ones after 5 s; its
 * connector behind a port-restricted NAT (address-and-port-dependent filtering). The connector
 * can only reach the listener at the address the listener signed into its accept, its srflx — so
 * that address must still be the listener's live mapping when the connection comes, long after
 * registration. With a fixed 15 s keepalive the mapping dies every time between keepalives and
 * comes back on another port; sized to the measured lifetime (5 s timeout: 4 s survive, 8 s do
 * not, so 0.8 × 4 = 3.2 s) it never dies.
 *
 * The first test also needs the registration to follow the mapping: the measurement's answer
 * comes ~10 s after registration, when the registered mapping (idle since registration, 15 s
 * default interval) is already gone; the first sized keepalive finds a new port and the listener
 * moves its registration there (rendezvous `update`). Had it not, its accept would name the dead
 * port and the connect would fail as in the second test.
 */
const IDLE_TIMEOUT_S = 5;
const BYTES = 64 << 10;
type LabOptions = Parameters<typeof withLab>[0];
const KEEPALIVE_ROUTERS: LabOptions = { a: { kind: 'port-restricted' }, b: { kind: 'eim-random-port', udpTimeoutSeconds: IDLE_TIMEOUT_S } };

type Listener = EventChild;

function listen(lab: Lab, host: string, dir: string, env = ''): Listener {
  return eventChild(lab.hosts[host]!.spawn(['sh', '-c',
    `${env} exec "${process.execPath}" "${CLI}" listen --server ${SERVER_URL} --key ${join(dir, 'key-l')} --once --json < ${join(dir, 'in-l')} > ${join(dir, 'out-l')}`]), 'listen');
}

async function connect(lab: Lab, host: string, dir: string, id: string, transport = 'udp'): Promise<{ code: number | null; events: Record<string, unknown>[]; stderr: string }> {
  const result = await lab.hosts[host]!.exec(['sh', '-c',
    `exec "${process.execPath}" "${CLI}" connect ${id} --server ${SERVER_URL} --key ${join(dir, 'key-c')} --transport ${transport} --json < ${join(dir, 'in-c')} > ${join(dir, 'out-c')}`], { timeoutMs: 120_000 });
  const events = result.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { code: result.code, events, stderr: result.stderr };
}

async function scenario(t: Parameters<typeof skipUnlessLab>[0], run: (lab: Lab, dir: string) => Promise<void>, routers: LabOptions = KEEPALIVE_ROUTERS): Promise<void> {
  if (skipUnlessLab(t)) return;
  const dir = await mkdtemp(join(tmpdir(), 'natpunch-keepalive-'));
  try {
    await writeFile(join(dir, 'in-l'), randomBytes(BYTES));
    await writeFile(join(dir, 'in-c'), randomBytes(BYTES));
    await withLab(routers, async (lab) => {
      await startServe(lab);
      await run(lab, dir);
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const sha = async (file: string): Promise<string> => createHash('sha256').update(await readFile(file)).digest('hex');

test(`a listener whose UDP mappings die after ${IDLE_TIMEOUT_S} s idle sizes its keepalive below that and stays reachable: direct-udp, 64 KiB each way`, { timeout: 240_000 }, async (t) => {
  await scenario(t, async (lab, dir) => {
    const listener = listen(lab, 'b1', dir, process.env['KA_DEBUG'] ?? '');
    const id = String((await listener.until((e) => e['event'] === 'ready', 'ready event'))['id']);
    const sized = await listener.until((e) => e['event'] === 'keepalive' && Number(e['intervalMs']) < IDLE_TIMEOUT_S * 1000, `a keepalive event under ${IDLE_TIMEOUT_S} s`);
    // 2 and 4 s of idling survive the 5 s conntrack timeout, 8 s does not.
    assert.equal(sized['lifetimeSeconds'], 4, JSON.stringify(sized));
    assert.equal(sized['expiredSeconds'], 8, JSON.stringify(sized));
    assert.equal(sized['intervalMs'], 3200, JSON.stringify(sized));
    // Now the timer under test: idle longer than the NAT's timeout. Without keepalives under
    // 5 s the mapping the listener registered would be gone (see the test below).
    await delay((IDLE_TIMEOUT_S + 2) * 1000);
    const listenerConnected = listener.until((e) => e['event'] === 'connected' || e['event'] === 'error', 'connected event');
    listenerConnected.catch(() => undefined); // awaited below, unless connect has failed first
    const connected = await connect(lab, 'a1', dir, id);
    assert.equal(connected.code, 0, `connect failed: ${connected.stderr}`);
    const event = connected.events.find((e) => e['event'] === 'connected');
    assert.equal(event?.['path'], 'direct-udp', connected.stderr);
    assert.equal((await listenerConnected)['path'], 'direct-udp');
    await bothWaysIntact(listener, dir);
  });
});

/** The listener exits 0 (both directions ended) and the bytes arrived unchanged both ways. */
async function bothWaysIntact(listener: Listener, dir: string): Promise<void> {
  // It exits once both directions have ended; the deadline is a net for a transfer that stalls.
  assert.equal(await listener.exited(90_000), 0, listener.stderr());
  if (process.env['KA_DEBUG']) console.log(listener.stderr());
  assert.equal(await sha(join(dir, 'out-c')), await sha(join(dir, 'in-l')), 'listener -> connector bytes differ');
  assert.equal(await sha(join(dir, 'out-l')), await sha(join(dir, 'in-c')), 'connector -> listener bytes differ');
}

test('the same listener with its keepalive pinned above the timeout (no sizing) has a dead registered mapping: UDP punching fails', { timeout: 240_000 }, async (t) => {
  await scenario(t, async (lab, dir) => {
    // Pinned at 60 s: no keepalive, no measurement and no move of the registration during the test.
    const listener = listen(lab, 'b1', dir, 'NATPUNCH_KEEPALIVE_MS=60000');
    const id = String((await listener.until((e) => e['event'] === 'ready', 'ready event'))['id']);
    const pinned = await listener.until((e) => e['event'] === 'keepalive', 'the initial keepalive event');
    assert.deepEqual([pinned['intervalMs'], pinned['reason']], [60_000, 'pinned']);
    await delay((IDLE_TIMEOUT_S + 2) * 1000);
    // The accept names the registered mapping, which the NAT has forgotten; the listener's own
    // checks leave from a new mapping on another random port, which the connector's
    // port-restricted NAT drops (it has sent only to the old port).
    const connected = await connect(lab, 'a1', dir, id);
    assert.notEqual(connected.code, 0, `connect unexpectedly succeeded: ${connected.stderr}`);
    const error = connected.events.find((e) => e['event'] === 'error');
    assert.equal(error?.['code'], 'ERR_TRANSPORT', connected.stderr);
    assert.match(String(error?.['message']), /UDP punching: no working path/);
  });
});

test('when the listener\'s NAT resets its kept STUN/TCP connection, the listener reopens it on a new port and is still reached over direct-tcp', { timeout: 240_000 }, async (t) => {
  await scenario(t, async (lab, dir) => {
    const listener = listen(lab, 'b1', dir, process.env['KA_DEBUG'] ?? '');
    const id = String((await listener.until((e) => e['event'] === 'ready', 'ready event'))['id']);
    // The kept connection: b1 -> the STUN server's TCP port, as router b tracks it.
    const router = lab.routers['b']!;
    const b1 = lab.hosts['b1']!.addresses[0]!;
    const kept = (await router.conntrack()).filter((e) => e.proto === 'tcp' && e.src === b1 && e.dport === 3478 && e.state === 'ESTABLISHED');
    assert.equal(kept.length, 1, JSON.stringify(kept));
    const port = kept[0]!.sport!;
    // From now on the router answers that connection's packets with RST, as a NAT that lost its
    // state does: the next TCP keepalive (15 s) kills it.
    const rule = await router.exec(['nft', 'insert', 'rule', 'ip', 'natlab', 'forward', 'iifname', 'lan', 'ip', 'saddr', b1, 'tcp', 'sport', String(port), 'tcp', 'dport', '3478', 'reject', 'with', 'tcp', 'reset'], { timeoutMs: 20_000 });
    assert.equal(rule.code, 0, rule.stderr);
    const reopened = await listener.until((e) => e['event'] === 'tcp-mapping', 'a tcp-mapping event');
    assert.match(String(reopened['mapped']), new RegExp(`^${router.wanAddress.replace(/\./g, '\\.')}:\\d+$`));
    assert.notEqual(String(reopened['mapped']).split(':')[1], String(port), 'the reopened connection leaves from a new port');
    // Without the reopened connection the listener would sign no TCP candidates, and
    // --transport tcp would have no technique to use.
    const listenerConnected = listener.until((e) => e['event'] === 'connected' || e['event'] === 'error', 'connected event');
    listenerConnected.catch(() => undefined); // awaited below, unless connect has failed first
    const connected = await connect(lab, 'a1', dir, id, 'tcp');
    assert.equal(connected.code, 0, `connect failed: ${connected.stderr}`);
    assert.equal(connected.events.find((e) => e['event'] === 'connected')?.['path'], 'direct-tcp', connected.stderr);
    assert.equal((await listenerConnected)['path'], 'direct-tcp');
    await bothWaysIntact(listener, dir);
  }, { a: { kind: 'port-restricted' }, b: { kind: 'port-restricted' } });
});
