import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { deadline } from '../src/deadline.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test('a deadline fires even when only the combined signal is kept and the heap is collected meanwhile', async () => {
  const { signal } = deadline(50);
  const aborted = once(signal, 'abort');
  for (let i = 0; i < 5; i++) { gc(); await new Promise((resolve) => setImmediate(resolve)); }
  await aborted;
  assert.equal((signal.reason as DOMException).name, 'TimeoutError');
  assert.match((signal.reason as DOMException).message, /no answer within 50 ms/);
});

test('an outer signal aborts it first, with its own reason; clear() stops the timer', async () => {
  const outer = new AbortController();
  const limit = deadline(60_000, outer.signal, undefined);
  outer.abort(new Error('closing'));
  assert.equal(limit.signal.aborted, true);
  assert.equal((limit.signal.reason as Error).message, 'closing');
  const cleared = deadline(20);
  cleared.clear();
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(cleared.signal.aborted, false, 'a cleared deadline never fires');
});
