import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TurnClient } from '../../src/turn/index.js';
import { encodeChannelData } from '../../src/turn/channel-data.js';
import { FakeClock } from '../transport/fake-clock.js';
import {
  FakeTransport, PASSWORD, RELAYED, USER, allocateSuccess, allocated, closeScripted, drain, errorReply, success,
} from './fake-server.js';

/**
 * Whatever arrives on the transport — random bytes, truncated or altered responses — the client
 * never throws and never settles a transaction on a message that is not its signed answer.
 */

const RUNS = { numRuns: 300, seed: 8656 };

/** True while `promise` has not settled. */
async function isPending(promise: Promise<unknown>): Promise<boolean> {
  return Promise.race([promise.then(() => false, () => false), drain().then(() => true)]);
}

test('random bytes on the transport never throw and settle nothing', async () => {
  const { client, transport } = await allocated();
  const permission = client.createPermission(['203.0.113.9']);
  const request = await transport.take();
  let data = 0;
  client.on('data', () => data++);
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(0x00, 0x01, 0x40, 0x41, 0x80, 0xff), (bytes, first) => {
    if (bytes.length > 0) bytes[0] = first;
    transport.deliver(bytes);
  }), RUNS);
  assert.equal(await isPending(permission), true);
  assert.equal(data, 0, 'no channel is bound, and random bytes are not Data indications');
  transport.deliver(success(request));
  await permission;
  await closeScripted({ client, transport });
});

test('a signed Allocate success that is truncated or has any byte altered is dropped; the real one is taken', async () => {
  const clock = new FakeClock();
  const transport = new FakeTransport();
  const client = new TurnClient(transport, { clock });
  const allocation = client.allocate({ username: USER, password: PASSWORD });
  transport.deliver(errorReply(await transport.take(), 401, { nonce: 'n1' }));
  const request = await transport.take();
  const good = allocateSuccess(request);
  for (let length = 0; length < good.length; length++) transport.deliver(good.subarray(0, length));
  fc.assert(fc.property(fc.nat({ max: good.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, xor) => {
    const altered = Uint8Array.from(good);
    altered[at]! ^= xor;
    transport.deliver(altered);
  }), RUNS);
  assert.equal(await isPending(allocation), true);
  transport.deliver(good);
  assert.deepEqual((await allocation).relayed, RELAYED);
  await closeScripted({ client, transport });
});

test('ChannelData: random lengths and channels only reach the bound channel, with exactly the data it carries', async () => {
  const { client, transport } = await allocated();
  const channel = client.bindChannel({ family: 4, address: '203.0.113.5', port: 7000 });
  transport.deliver(success(await transport.take()));
  assert.equal(await channel, 0x4000);
  const got: Uint8Array[] = [];
  client.on('data', (_peer, data) => got.push(Uint8Array.from(data)));
  fc.assert(fc.property(fc.integer({ min: 0x4000, max: 0x4002 }), fc.uint8Array({ maxLength: 64 }), fc.integer({ min: -3, max: 3 }), (number, data, cut) => {
    got.length = 0;
    const message = encodeChannelData(number, data);
    const bytes = cut < 0 ? message.subarray(0, Math.max(0, message.length + cut)) : Uint8Array.from([...message, ...new Array<number>(cut).fill(0)]);
    transport.deliver(bytes);
    const whole = cut >= 0;
    if (number === 0x4000 && whole) assert.deepEqual(got, [data]);
    else assert.deepEqual(got, [], `channel 0x${number.toString(16)}, cut ${cut}`);
  }), RUNS);
  await closeScripted({ client, transport });
});
