import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withLab } from '../../src/lab/index.js';
import { generateIdentity } from '../../src/identity/index.js';
import { natpunch } from '../support/cli.js';
import { skipUnlessLab } from '../support/lab.js';
import { cliChild, scratch } from '../support/loopback-cli.js';
import { SERVER_URL, startServe } from '../support/peers.js';

/**
 * Acceptance (issue 10): through two port-restricted NATs, a peer not on the listener's
 * allow-list is refused and says why, and the listener sends not one packet toward it (counted by
 * nftables on the listener's NAT as packets leave for the other NAT's public address). An
 * allowed peer then connects through the same NATs, which proves the counter live.
 */
test('through two port-restricted NATs: a peer not allowed is refused with ERR_REFUSED, and 0 packets go toward it', { timeout: 180_000 }, async (t) => {
  if (skipUnlessLab(t)) return;
  const dir = await scratch(t);
  await withLab({ a: { kind: 'port-restricted' }, b: { kind: 'port-restricted' } }, async (lab) => {
    await startServe(lab, '--no-relay');
    const routerB = lab.routers.b!;
    await routerB.addCounter('to-a', `ip daddr ${lab.routers.a!.wanAddress}`);
    const allowed = generateIdentity();
    const allowedKey = join(dir, 'allowed.key');
    await writeFile(allowedKey, allowed.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, { mode: 0o600 });
    const allowFile = join(dir, 'allowed');
    await writeFile(allowFile, `${allowed.peerId}\n`);
    const listen = cliChild(t, lab.hosts['b1']!.spawn(natpunch('listen', '--server', SERVER_URL, '--key', join(dir, 'l.key'), '--allow-file', allowFile, '--once', '--json')), 'listen');
    const id = String((await listen.until((e) => e['event'] === 'ready', 'ready'))['id']);

    const stranger = cliChild(t, lab.hosts['a1']!.spawn(natpunch('connect', id, '--server', SERVER_URL, '--key', join(dir, 'stranger.key'), '--json')), 'connect (stranger)');
    stranger.child.stdin!.end('hello');
    assert.equal(await stranger.exited(60_000), 1, stranger.stderr());
    assert.deepEqual(stranger.events.find((e) => e['event'] === 'error'),
      { event: 'error', code: 'ERR_REFUSED', message: `peer ${id} refused the connection: not on its allow-list` });
    await listen.until((e) => e['event'] === 'refused', 'refused');
    assert.equal((await routerB.counter('to-a')).packets, 0, 'the listener sent packets toward the refused peer');

    const friend = cliChild(t, lab.hosts['a1']!.spawn(natpunch('connect', id, '--server', SERVER_URL, '--key', allowedKey, '--json')), 'connect (allowed)');
    friend.child.stdin!.end('hello');
    listen.child.stdin!.end('welcome');
    assert.equal(await friend.exited(60_000), 0, friend.stderr());
    assert.equal(await listen.exited(60_000), 0, listen.stderr());
    assert.equal(friend.received(), 'welcome'.length);
    assert.ok((await routerB.counter('to-a')).packets > 0, 'the counter is live');
  });
});
