import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from '../support/wait.js';
import { answersBeforeMarker } from '../support/stun-marker.js';
import { StunServer } from '../../src/stun/server.js';
import { StreamFramer } from '../../src/stun/framing.js';
import {
  type Attribute, AttrType, Method, MessageClass, decodeMessage, encodeMessage, getAttribute, newTransactionId,
  padding, software, verifyFingerprint,
} from '../../src/wire/index.js';

// RFC 8489 §7.3 (and §14.7): a message whose FINGERPRINT is wrong is not STUN; it is discarded
// silently, as it would be by a server sharing its port with another protocol.

let server: StunServer;
let socket: dgram.Socket;

before(async () => {
  server = await StunServer.listen({ address: '127.0.0.1', port: 0, software: 'natpunch test', native: false });
  socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
});

after(async () => {
  socket.close();
  await server.close();
});

function binding(attributes: Attribute[], corrupt: boolean): { id: Uint8Array; bytes: Uint8Array } {
  const id = newTransactionId();
  const bytes = encodeMessage({ method: Method.Binding, messageClass: MessageClass.Request, transactionId: id, attributes }, { fingerprint: true });
  if (corrupt) bytes[bytes.length - 1]! ^= 0x01; // the CRC's last byte
  return { id, bytes };
}

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

// Attribute sets that take the fast path (none, SOFTWARE) and the general one (PADDING).
const cases: [string, Attribute[]][] = [
  ['no other attribute (fast path)', []],
  ['SOFTWARE (fast path)', [{ type: AttrType.Software, value: software.encode('client') }]],
  ['PADDING (general path)', [{ type: AttrType.Padding, value: padding.encode(64) }]],
];

for (const [what, attributes] of cases) {
  test(`over UDP, a Binding with ${what} and a wrong FINGERPRINT is discarded; with the right one it is answered with FINGERPRINT`, async () => {
    const droppedBefore = server.stats.dropped;
    const to = server.addresses[0]!;
    assert.deepEqual(await answersBeforeMarker(socket, binding(attributes, true).bytes, to), [], 'the request with a wrong FINGERPRINT was answered');
    assert.equal(server.stats.dropped, droppedBefore + 1, 'counted as dropped');
    const answers = await answersBeforeMarker(socket, binding(attributes, false).bytes, to);
    assert.equal(answers.length, 1);
    assert.equal(verifyFingerprint(decodeMessage(answers[0]!)), true);
  });
}

test('over TCP, a Binding with a wrong FINGERPRINT is discarded and the connection keeps serving', async () => {
  const client = net.connect(server.addresses[0]!.port, '127.0.0.1');
  await once(client, 'connect');
  const framer = new StreamFramer();
  const answered: Uint8Array[] = [];
  const bad = binding([], true);
  const good = binding([], false);
  const done = new Promise<void>((resolve) => {
    client.on('data', (chunk: Buffer) => {
      for (const frame of framer.push(chunk)) {
        const id = decodeMessage(frame).transactionId;
        answered.push(id);
        if (same(id, good.id)) resolve();
      }
    });
  });
  client.write(bad.bytes);
  client.write(good.bytes);
  await done;
  assert.ok(!answered.some((id) => same(id, bad.id)), 'the request with a wrong FINGERPRINT was answered');
  client.destroy();
});

test('a FINGERPRINT that is not the last attribute makes the message not STUN either', async () => {
  const good = encodeMessage({ method: Method.Binding, messageClass: MessageClass.Request, transactionId: newTransactionId(), attributes: [] }, { fingerprint: true });
  // FINGERPRINT, then SOFTWARE after it: RFC 8489 §14.7 puts FINGERPRINT last.
  const value = software.encode('late');
  const trailing = Buffer.concat([Buffer.from(good), Buffer.from([0x80, 0x22, 0x00, value.length]), Buffer.from(value)]);
  trailing.writeUInt16BE(trailing.length - 20, 2);
  assert.ok(getAttribute(decodeMessage(trailing), AttrType.Software) !== undefined, 'a well-formed message but for FINGERPRINT\'s place');
  assert.deepEqual(await answersBeforeMarker(socket, trailing, server.addresses[0]!), [], 'answered a message whose FINGERPRINT is not last');
});
