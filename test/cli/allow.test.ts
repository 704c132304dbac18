import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../support/cli.js';
import { loopbackServer, scratch, startCli } from '../support/loopback-cli.js';

/** `listen --allow / --allow-file`: who is not listed is refused before any data flows, and told why. */
test('listen --allow-file: a listed peer connects; another is refused with ERR_REFUSED, and the listener logs it', async (t) => {
  const server = await loopbackServer(t);
  const dir = await scratch(t);
  const keys = { l: join(dir, 'l.key'), ok: join(dir, 'ok.key'), other: join(dir, 'other.key') };
  const okId = (await runCli('id', '--key', keys.ok)).stdout.trim();
  const otherId = (await runCli('id', '--key', keys.other)).stdout.trim();
  const allowed = join(dir, 'allowed');
  await writeFile(allowed, `# peers that may connect\n${okId}  # the one\n`);
  const listen = startCli(t, 'listen', ['listen', '--server', server, '--key', keys.l, '--allow-file', allowed, '--once', '--json']);
  const id = String((await listen.until((e) => e['event'] === 'ready', 'ready'))['id']);

  const refused = startCli(t, 'connect (not allowed)', ['connect', id, '--server', server, '--key', keys.other, '--json']);
  refused.child.stdin!.end('secret');
  assert.equal(await refused.exited(20_000), 1, refused.stderr());
  const error = refused.events.find((e) => e['event'] === 'error');
  assert.deepEqual(error, { event: 'error', code: 'ERR_REFUSED', message: `peer ${id} refused the connection: not on its allow-list` });
  assert.equal(refused.events.some((e) => e['event'] === 'connected'), false);
  const logged = await listen.until((e) => e['event'] === 'refused', 'refused');
  assert.deepEqual(logged, { event: 'refused', peer: otherId, reason: 'not on the allow-list' });
  assert.equal(listen.received(), 0, 'no data from the refused peer');

  const ok = startCli(t, 'connect (allowed)', ['connect', id, '--server', server, '--key', keys.ok, '--json']);
  ok.child.stdin!.end('hello');
  listen.child.stdin!.end('world');
  assert.equal(await ok.exited(20_000), 0, ok.stderr());
  assert.equal(await listen.exited(20_000), 0, listen.stderr());
  assert.equal(listen.received(), 5);
  assert.equal(ok.received(), 5);
  // The summary at the end: the bytes each way.
  const closed = ok.events.find((e) => e['event'] === 'closed');
  assert.equal(closed?.['sent'], 5);
  assert.equal(closed?.['received'], 5);
  assert.equal(closed?.['peer'], id);
});

test('listen --allow with a bad id is a usage error before anything starts', async () => {
  const result = await runCli('listen', '--server', 'ws://127.0.0.1:1/', '--allow', 'nope');
  assert.equal(result.code, 2);
  assert.match(result.stderr, /^natpunch listen: --allow: peer id "nope"/);
});
