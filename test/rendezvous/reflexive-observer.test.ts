import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReflexiveObserver } from '../../src/rendezvous/index.js';
import { type StunMessage, AttrType, MessageClass, Method, newTransactionId, username } from '../../src/wire/index.js';

const TOKEN = 'AAAAAAAAAAAAAAAAAAAAAA';
const from = { family: 4 as const, address: '192.0.2.7', port: 4000 };

function binding(user?: string): StunMessage {
  const attributes = user === undefined ? [] : [{ type: AttrType.Username, value: username.encode(user) }];
  return { method: Method.Binding, messageClass: MessageClass.Request, transactionId: newTransactionId(), attributes, raw: new Uint8Array(20) } as unknown as StunMessage;
}

test('records the source of a Binding carrying an expected token, per transport', () => {
  const observer = new ReflexiveObserver();
  observer.expect(TOKEN);
  observer.onBinding(binding(TOKEN), from, 'udp');
  assert.deepEqual(observer.observed(TOKEN, 'udp'), from);
  assert.equal(observer.observed(TOKEN, 'tcp'), undefined);
});

test('ignores tokens it was not told to expect, and Bindings without USERNAME', () => {
  const observer = new ReflexiveObserver();
  observer.onBinding(binding(TOKEN), from, 'udp');
  observer.onBinding(binding(), from, 'udp');
  assert.equal(observer.observed(TOKEN), undefined);
  assert.equal(observer.size, 0);
});

test('observations expire, and the number of expected tokens is bounded', () => {
  let now = 0;
  const observer = new ReflexiveObserver({ ttlMs: 100, maxTokens: 2, now: () => now });
  observer.expect(TOKEN);
  observer.onBinding(binding(TOKEN), from, 'udp');
  now = 100;
  assert.equal(observer.observed(TOKEN), undefined);
  for (const t of ['BAAAAAAAAAAAAAAAAAAAAA', 'CAAAAAAAAAAAAAAAAAAAAA', 'DAAAAAAAAAAAAAAAAAAAAA']) observer.expect(t);
  assert.equal(observer.size, 2);
});

test('wait resolves as soon as the Binding arrives, or with undefined after the timeout', async () => {
  const observer = new ReflexiveObserver();
  observer.expect(TOKEN);
  const waiting = observer.wait(TOKEN, 'udp', 10_000);
  observer.onBinding(binding(TOKEN), from, 'udp');
  assert.deepEqual(await waiting, from);
  observer.expect('BAAAAAAAAAAAAAAAAAAAAA');
  assert.equal(await observer.wait('BAAAAAAAAAAAAAAAAAAAAA', 'udp', 10), undefined);
  const forgotten = observer.wait('BAAAAAAAAAAAAAAAAAAAAA', 'udp', 10_000);
  observer.clear();
  assert.equal(await forgotten, undefined, 'clear() releases waiters at once');
});
