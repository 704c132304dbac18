/**
 * Acceptance (issue 10, file transfer): through two port-restricted NATs — which need a real
 * hole punch — `natpunch send` from a1 to `natpunch receive` in b1 delivers 32 MiB and a
 * directory tree intact over a direct path, with progress events; a sender killed past half and
 * started again sends only the rest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Lab } from '../../src/lab/index.js';
import { CLI } from '../support/cli.js';
import { eventChild, type EventChild } from '../support/json-events.js';
import { inLab } from '../support/paced-transfer.js';
import { SERVER_URL } from '../support/peers.js';
import { treeDigest } from '../support/send-receive.js';

const MiB = 1024 * 1024;

function natpunchIn(lab: Lab, host: string, name: string, args: string[]): EventChild {
  return eventChild(lab.hosts[host]!.spawn([process.execPath, CLI, ...args, '--server', SERVER_URL, '--json']), name);
}

test('port-restricted × port-restricted: 32 MiB and a tree intact over direct-udp; killed past half, sent again, only the rest moves', { timeout: 300_000 }, async (t) => {
  await inLab(t, { a: { kind: 'port-restricted' }, b: { kind: 'port-restricted' } }, async (lab, dir) => {
    const src = join(dir, 'src');
    const out = join(dir, 'out');
    await mkdir(join(src, 'tree', 'sub'), { recursive: true });
    await mkdir(out);
    await writeFile(join(src, 'big.bin'), randomBytes(32 * MiB));
    for (let i = 0; i < 10; i++) await writeFile(join(src, 'tree', i % 2 ? 'sub' : '', `f${i}`), randomBytes(i * 4096));
    const receiver = natpunchIn(lab, 'b1', 'natpunch receive', ['receive', '--key', join(dir, 'key-r'), '--out', out]);
    t.after(() => { receiver.child.kill('SIGKILL'); });
    const id = String((await receiver.until((e) => e['event'] === 'ready', 'ready'))['id']);

    const whole = natpunchIn(lab, 'a1', 'natpunch send', ['send', id, join(src, 'big.bin'), join(src, 'tree'), '--key', join(dir, 'key-s')]);
    assert.equal(await whole.exited(180_000), 0, whole.stderr());
    const connected = whole.events.find((e) => e['event'] === 'connected')!;
    assert.equal(connected['path'], 'direct-udp', whole.stderr());
    assert.ok(whole.events.filter((e) => e['event'] === 'progress').length >= 2, whole.stderr());
    assert.deepEqual(await treeDigest(out), await treeDigest(src));
    await receiver.until((e) => e['event'] === 'done', 'done');

    // Again, into a fresh name: killed past half, then sent again.
    const again = join(dir, 'again.bin');
    await writeFile(again, randomBytes(32 * MiB));
    const sendArgs = ['send', id, again, '--key', join(dir, 'key-s')];
    const first = natpunchIn(lab, 'a1', 'the first natpunch send', [...sendArgs, '--limit-rate', '8M']);
    await first.until((e) => e['event'] === 'progress' && Number(e['bytes']) > 16 * MiB, 'progress past half', 120_000);
    first.child.kill('SIGKILL');
    await first.exited(10_000);
    const second = natpunchIn(lab, 'a1', 'the second natpunch send', sendArgs);
    assert.equal(await second.exited(180_000), 0, second.stderr());
    const done = second.events.find((e) => e['event'] === 'done')!;
    t.diagnostic(`second run: ${done['resumed']} bytes resumed, ${done['transferred']} sent`);
    assert.equal(Number(done['resumed']) + Number(done['transferred']), 32 * MiB);
    assert.ok(Number(done['resumed']) >= 8 * MiB, `resumed ${done['resumed']}`);
    assert.ok(Number(done['transferred']) <= 24 * MiB, `transferred ${done['transferred']}`);
    assert.equal((await treeDigest(out))['again.bin'], (await treeDigest(dir))['again.bin']);
    receiver.child.kill('SIGTERM');
    assert.equal(await receiver.exited(15_000), 143, receiver.stderr()); // 128 + SIGTERM, as listen
  });
});
