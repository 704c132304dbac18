import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TurnClient, allocationRefreshDelayMs } from '../../src/turn/index.js';
import { NatpunchError, TransactionTimeoutError, TurnError } from '../../src/errors.js';
import {
  AttrType, MessageClass, Method, channelNumber, getAttribute, lifetime, nonce, xorPeerAddress, type StunMessage,
} from '../../src/wire/index.js';
import { encodeChannelData } from '../../src/turn/channel-data.js';
import { FakeClock } from '../transport/fake-clock.js';
import {
  FakeTransport, KEY, PASSWORD, USER, allocated, closeScripted, drain, errorReply, reply, success,
} from './fake-server.js';

/**
 * The client's transactions and timers against a scripted server on a fake clock: the RFC 8489
 * retransmission schedule, 438 retries, integrity checks, refresh times, close.
 */

/** True while `promise` has not settled (after the microtasks queued so far have run). */
async function isPending(promise: Promise<unknown>): Promise<boolean> {
  return Promise.race([promise.then(() => false, () => false), new Promise<boolean>((resolve) => setImmediate(() => resolve(true)))]);
}

function peerOf(request: StunMessage): string {
  const value = getAttribute(request, AttrType.XorPeerAddress)!;
  const peer = xorPeerAddress.decode(value, request.transactionId);
  return `${peer.address}:${peer.port}`;
}

const PEER = { family: 4, address: '203.0.113.5', port: 7000 } as const;

test('over UDP a request is sent at 0, 500, 1500, 3500, 7500, 15500, 31500 ms and fails at 39.5 s', async () => {
  const clock = new FakeClock();
  const transport = new FakeTransport('udp');
  const client = new TurnClient(transport, { clock });
  const allocation = client.allocate({ username: USER, password: PASSWORD });
  allocation.catch(() => {});
  const at: number[] = [];
  let seen = 0;
  for (let ms = 0; ms < 39_500; ms += 100) {
    if (transport.sent.length > seen) at.push(clock.now());
    seen = transport.sent.length;
    clock.advance(100);
  }
  assert.deepEqual(at, [0, 500, 1500, 3500, 7500, 15500, 31500]);
  assert.ok(transport.sent.every((bytes) => Buffer.from(bytes).equals(Buffer.from(transport.sent[0]!))), 'retransmissions are the same bytes');
  await assert.rejects(allocation, (error: unknown) => error instanceof TransactionTimeoutError && error.code === 'ERR_STUN_TIMEOUT' && /7 transmissions in 39500 ms/.test(error.message));
});

test('over TCP a request is sent once and fails after the stream timeout (default 10 s, configurable)', async () => {
  for (const [options, deadline] of [[{}, 10_000], [{ streamTransactionTimeoutMs: 2_000 }, 2_000]] as const) {
    const clock = new FakeClock();
    const transport = new FakeTransport('tcp');
    const allocation = new TurnClient(transport, { clock, ...options }).allocate({ username: USER, password: PASSWORD });
    allocation.catch(() => {});
    clock.advance(deadline - 1);
    assert.equal(transport.sent.length, 1);
    assert.equal(await isPending(allocation), true);
    clock.advance(1);
    await assert.rejects(allocation, TransactionTimeoutError);
  }
});

test('the first Allocate carries no credentials; the second USERNAME, REALM, NONCE and MESSAGE-INTEGRITY', async () => {
  const { transport } = await allocated();
  const [first, second] = [await transport.nth(1), await transport.nth(2)];
  assert.equal(getAttribute(first, AttrType.Username), undefined);
  assert.equal(getAttribute(first, AttrType.MessageIntegrity), undefined);
  for (const type of [AttrType.Username, AttrType.Realm, AttrType.Nonce, AttrType.MessageIntegrity, AttrType.RequestedTransport]) {
    assert.ok(getAttribute(second, type), `attribute 0x${type.toString(16)}`);
  }
  assert.notDeepEqual(first.transactionId, second.transactionId);
});

test('438 Stale Nonce: the request is repeated with the new nonce', async () => {
  const { client, transport } = await allocated();
  const permission = client.createPermission(['203.0.113.5']);
  const first = await transport.take();
  assert.equal(nonce.decode(getAttribute(first, AttrType.Nonce)!), 'n1');
  transport.deliver(errorReply(first, 438, { nonce: 'n2' }));
  const second = await transport.take();
  assert.equal(second.method, Method.CreatePermission);
  assert.equal(nonce.decode(getAttribute(second, AttrType.Nonce)!), 'n2');
  assert.equal(peerOf(second), '203.0.113.5:0');
  transport.deliver(success(second));
  await permission;
  // Later requests use the new nonce too.
  void client.refresh(600).catch(() => {});
  assert.equal(nonce.decode(getAttribute(await transport.take(), AttrType.Nonce)!), 'n2');
});

test('responses not signed with the key are dropped; a signed error is a TurnError with the server\'s status', async () => {
  const { client, transport } = await allocated();
  const permission = client.createPermission(['203.0.113.5']);
  const request = await transport.take();
  transport.deliver(reply(request, MessageClass.SuccessResponse, []));
  transport.deliver(reply(request, MessageClass.SuccessResponse, [], new Uint8Array(16)));
  transport.deliver(errorReply(request, 403));
  transport.deliver(reply({ ...request, method: Method.ChannelBind }, MessageClass.SuccessResponse, [], KEY));
  assert.equal(await isPending(permission), true, 'unsigned, wrongly signed, unsigned error and wrong-method responses are ignored');
  transport.deliver(errorReply(request, 403, { key: KEY }));
  await assert.rejects(permission, (error: unknown) => {
    assert.ok(error instanceof TurnError);
    assert.equal(error.status, 403);
    assert.equal(error.reason, 'test 403');
    assert.match(error.message, /CreatePermission for 203\.0\.113\.5: 403 test 403: the server forbids it/);
    return true;
  });
});

test('several transactions in flight are told apart by transaction id', async () => {
  const { client, transport } = await allocated();
  const permission = client.createPermission(['203.0.113.9']);
  const channel = client.bindChannel(PEER);
  const [permissionRequest, channelRequest] = [await transport.take(), await transport.take()];
  assert.equal(channelRequest.method, Method.ChannelBind);
  assert.equal(channelNumber.decode(getAttribute(channelRequest, AttrType.ChannelNumber)!), 0x4000);
  transport.deliver(success(channelRequest));
  assert.equal(await channel, 0x4000);
  assert.equal(await isPending(permission), true);
  transport.deliver(success(permissionRequest));
  await permission;
  const second = client.bindChannel({ ...PEER, port: 7001 });
  transport.deliver(success(await transport.take()));
  assert.equal(await second, 0x4001, 'channels count up from 0x4000');
});

test('refresh delays: a minute before expiry, never before half the lifetime', () => {
  assert.deepEqual([600, 3600, 100, 60].map(allocationRefreshDelayMs), [540_000, 3_540_000, 50_000, 30_000]);
});

test('the allocation is refreshed at lifetime - 60 s, permissions every 240 s, channels every 480 s', async () => {
  const { client, transport, clock } = await allocated({ seconds: 600 });
  const permission = client.createPermission(['203.0.113.9']);
  transport.deliver(success(await transport.take()));
  await permission;
  const channel = client.bindChannel(PEER);
  transport.deliver(success(await transport.take()));
  await channel;

  const seen: string[] = [];
  const answer = (request: StunMessage): void => {
    seen.push(`${clock.now() / 1000}s ${Method[request.method]}`);
    transport.deliver(request.method === Method.Refresh ? success(request, 600) : success(request));
  };
  let handled = transport.sent.length;
  for (let second = 0; second <= 600; second++) {
    clock.advance(1000);
    while (transport.sent.length > handled) answer(await transport.nth(++handled));
    await drain();
  }
  // Two refreshes fall due at 480 s; their order is the timers' creation order, not a rule.
  assert.deepEqual(seen.sort(), ['240s CreatePermission', '480s ChannelBind', '480s CreatePermission', '540s Refresh']);
  await closeScripted({ client, transport });
});

test('a permission refresh covers every permitted IP, channel peers included', async () => {
  const { client, transport, clock } = await allocated();
  const permission = client.createPermission(['203.0.113.9', '203.0.113.10']);
  transport.deliver(success(await transport.take()));
  await permission;
  const channel = client.bindChannel(PEER);
  transport.deliver(success(await transport.take()));
  await channel;
  clock.advance(240_000);
  const refresh = await transport.take();
  assert.equal(refresh.method, Method.CreatePermission);
  const peers = refresh.attributes.filter((a) => a.type === AttrType.XorPeerAddress).map((a) => xorPeerAddress.decode(a.value, refresh.transactionId).address);
  assert.deepEqual(peers.sort(), ['203.0.113.10', '203.0.113.5', '203.0.113.9']);
});

test('an allocation refresh refused by the server ends the client with refreshError and close', async () => {
  const { client, transport, clock } = await allocated({ seconds: 600 });
  const events: string[] = [];
  client.on('refreshError', (error, target, final) => events.push(`${target} ${final} ${(error as TurnError).status}`));
  client.on('close', (error) => events.push(`close ${error?.message}`));
  clock.advance(540_000);
  transport.deliver(errorReply(await transport.take(), 437, { key: KEY }));
  await new Promise<void>((resolve) => client.once('close', () => resolve()));
  assert.equal(events[0], 'allocation true 437');
  assert.match(events[1]!, /^close TURN: the allocation could not be refreshed: TURN Refresh: 437/);
  assert.equal(transport.closed, true);
  assert.equal(client.allocation, undefined);
});

test('a refresh that times out is retried while the allocation lives', async () => {
  const { client, transport, clock } = await allocated({ seconds: 600, client: { retransmission: { rc: 1, rm: 1 } } });
  const errors: boolean[] = [];
  client.on('refreshError', (_error, _target, final) => errors.push(final));
  clock.advance(540_000);
  await transport.take();
  clock.advance(500); // the transaction times out (rc 1, rm 1: 500 ms)
  await new Promise<void>((resolve) => client.once('refreshError', () => resolve()));
  clock.advance(5_000);
  const retry = await transport.take();
  assert.equal(retry.method, Method.Refresh);
  transport.deliver(success(retry, 600));
  assert.deepEqual(errors, [false]);
  await closeScripted({ client, transport });
});

test('close() sends Refresh with LIFETIME 0, fails what is outstanding, closes the transport, once', async () => {
  const { client, transport } = await allocated();
  const permission = client.createPermission(['203.0.113.9']);
  await transport.take();
  let closes = 0;
  client.on('close', () => closes++);
  const closing = client.close();
  assert.equal(client.close(), closing, 'every call returns the same promise');
  const refresh = await transport.take();
  assert.equal(refresh.method, Method.Refresh);
  assert.equal(lifetime.decode(getAttribute(refresh, AttrType.Lifetime)!), 0);
  transport.deliver(success(refresh, 0));
  await closing;
  await assert.rejects(permission, (error: unknown) => NatpunchError.is(error) && error.code === 'ERR_STUN_CLOSED');
  assert.equal(transport.closed, true);
  assert.equal(closes, 1);
  await assert.rejects(client.createPermission(['203.0.113.1']), /closed/);
});

test('close() gives up on a silent server within a few seconds', async () => {
  const { client, transport, clock } = await allocated();
  const closing = client.close();
  await transport.take();
  clock.advance(3_499);
  assert.equal(await isPending(closing), true);
  clock.advance(1);
  await closing;
  assert.equal(transport.closed, true);
});

test('send: a Send indication without a channel; one ChannelData buffer with one, padded over TCP only', async () => {
  for (const kind of ['udp', 'tcp'] as const) {
    const { client, transport } = await allocated({ kind });
    client.send(PEER, Uint8Array.of(1, 2, 3, 4, 5));
    const indication = await transport.take();
    assert.equal(indication.method, Method.Send);
    assert.equal(indication.messageClass, MessageClass.Indication);
    assert.equal(peerOf(indication), '203.0.113.5:7000');
    assert.deepEqual(getAttribute(indication, AttrType.Data), Uint8Array.of(1, 2, 3, 4, 5));

    const channel = client.bindChannel(PEER);
    transport.deliver(success(await transport.take()));
    await channel;
    client.send(PEER, Uint8Array.of(1, 2, 3, 4, 5));
    const sent = transport.sent[transport.sent.length - 1]!;
    assert.deepEqual(sent, kind === 'tcp' ? Uint8Array.of(0x40, 0, 0, 5, 1, 2, 3, 4, 5, 0, 0, 0) : Uint8Array.of(0x40, 0, 0, 5, 1, 2, 3, 4, 5));
    await closeScripted({ client, transport });
  }
});

test('receive: Data indications and ChannelData on a bound channel become data events; other channels are dropped', async () => {
  const { client, transport } = await allocated();
  const got: string[] = [];
  client.on('data', (peer, data) => got.push(`${peer.address}:${peer.port} ${Buffer.from(data).toString('hex')}`));
  const channel = client.bindChannel(PEER);
  transport.deliver(success(await transport.take()));
  await channel;
  transport.deliver(encodeChannelData(0x4000, Uint8Array.of(0xaa, 0xbb)));
  transport.deliver(encodeChannelData(0x4001, Uint8Array.of(0xcc)));
  const data = { method: Method.Data, messageClass: MessageClass.Indication, transactionId: new Uint8Array(12).fill(7), attributes: [], raw: new Uint8Array(0) };
  transport.deliver(reply(data, MessageClass.Indication, [
    { type: AttrType.XorPeerAddress, value: xorPeerAddress.encode({ family: 4, address: '203.0.113.77', port: 9 }, data.transactionId) },
    { type: AttrType.Data, value: Uint8Array.of(0xdd) },
  ]));
  transport.deliver(reply(data, MessageClass.Indication, [{ type: AttrType.Data, value: Uint8Array.of(0xee) }]));
  assert.deepEqual(got, ['203.0.113.5:7000 aabb', '203.0.113.77:9 dd']);
});
