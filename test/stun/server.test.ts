import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from '../support/wait.js';
import { randomBytes } from 'node:crypto';
import { StunServer } from '../../src/stun/server.js';
import { StunUdpClient } from '../../src/stun/udp-client.js';
import { StunTcpClient } from '../../src/stun/tcp-client.js';
import { NatpunchError, StunErrorResponseError, TransactionTimeoutError } from '../../src/errors.js';
import {
  AttrType, Method, MessageClass, changeRequest, decodeMessage, encodeMessage, getAttribute, mappedAddress, newTransactionId,
  padding, responsePort, unknownAttributes, xorMappedAddress, type TransportAddress, type StunMessage, RFC3489_CHANGED_ADDRESS, RFC3489_SOURCE_ADDRESS,
} from '../../src/wire/index.js';

// 127.0.0.1 and 127.0.0.2 are two real addresses on Linux loopback: a full RFC 5780 server, no root.
let server: StunServer;
let plain: StunServer;
let primary: TransportAddress;
const sockets: dgram.Socket[] = [];

async function udpSocket(): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  sockets.push(socket);
  return socket;
}

before(async () => {
  server = await StunServer.listen({ address: '127.0.0.1', altAddress: '127.0.0.2', port: 0, altPort: 0, software: 'natpunch test' });
  plain = await StunServer.listen({ address: '127.0.0.1', port: 0 });
  primary = server.addresses[0]!;
});

after(async () => {
  for (const s of sockets) s.close();
  await server.close();
  await plain.close();
});

const addressOf = (m: StunMessage, type: number): TransportAddress => mappedAddress.decode(getAttribute(m, type)!);

test('listens on two IPs by two ports, the second IP reusing the ports the first chose', () => {
  const [a, b, c, d] = server.addresses;
  assert.equal(server.addresses.length, 4);
  assert.deepEqual([a!.address, b!.address, c!.address, d!.address], ['127.0.0.1', '127.0.0.1', '127.0.0.2', '127.0.0.2']);
  assert.equal(a!.port, c!.port);
  assert.equal(b!.port, d!.port);
  assert.notEqual(a!.port, b!.port);
});

test('a Binding response carries the source as XOR-MAPPED-ADDRESS, plus OTHER-ADDRESS and RESPONSE-ORIGIN', async () => {
  const socket = await udpSocket();
  const client = new StunUdpClient(socket);
  const { message, from } = await client.request(primary);
  const mapped = xorMappedAddress.decode(getAttribute(message, AttrType.XorMappedAddress)!, message.transactionId);
  assert.deepEqual(mapped, { family: 4, address: '127.0.0.1', port: socket.address().port });
  assert.deepEqual(addressOf(message, AttrType.OtherAddress), server.addresses[3]);
  assert.deepEqual(addressOf(message, AttrType.ResponseOrigin), primary);
  assert.deepEqual(from, primary);
  client.close();
});

test('CHANGE-REQUEST makes the response come from the other IP and/or port (RFC 5780 §6.1)', async () => {
  const socket = await udpSocket();
  const client = new StunUdpClient(socket);
  const cases: [boolean, boolean, TransportAddress][] = [
    [true, true, server.addresses[3]!], [false, true, server.addresses[1]!], [true, false, server.addresses[2]!], [false, false, primary],
  ];
  for (const [changeIp, changePort, expected] of cases) {
    const { message, from } = await client.request(primary, { attributes: [{ type: AttrType.ChangeRequest, value: changeRequest.encode({ changeIp, changePort }) }] });
    assert.deepEqual(from, expected, `changeIp=${changeIp} changePort=${changePort}`);
    assert.deepEqual(addressOf(message, AttrType.ResponseOrigin), expected);
  }
  client.close();
});

test('a request to the alternate endpoint names the primary as OTHER-ADDRESS', async () => {
  const socket = await udpSocket();
  const client = new StunUdpClient(socket);
  const { message } = await client.request(server.addresses[3]!);
  assert.deepEqual(addressOf(message, AttrType.OtherAddress), primary);
  client.close();
});

test('RESPONSE-PORT sends the response to that port of the source IP (RFC 5780 §7.5)', async () => {
  const asker = await udpSocket();
  const listener = await udpSocket();
  const transactionId = newTransactionId();
  const request = encodeMessage({ method: Method.Binding, messageClass: MessageClass.Request, transactionId,
    attributes: [{ type: AttrType.ResponsePort, value: responsePort.encode(listener.address().port) }] });
  asker.send(request, primary.port, primary.address);
  const [data] = await once(listener, 'message') as [Buffer];
  assert.deepEqual(Buffer.from(decodeMessage(data).transactionId), Buffer.from(transactionId));
});

// An error response over UDP is never larger than its request (decision 001), so these requests
// carry PADDING to make room for theirs (test/stun/error-amplification.test.ts: without it, silence).
const room = { type: AttrType.Padding, value: padding.encode(64) };

test('CHANGE-REQUEST to a server without an alternate address gets 420', async () => {
  const socket = await udpSocket();
  const client = new StunUdpClient(socket);
  await assert.rejects(
    client.request(plain.addresses[0]!, { attributes: [{ type: AttrType.ChangeRequest, value: changeRequest.encode({ changeIp: true, changePort: false }) }, room] }),
    (e: unknown) => e instanceof StunErrorResponseError && e.status === 420 && e.code === 'ERR_STUN_ERROR_RESPONSE',
  );
  client.close();
});

test('an unknown comprehension-required attribute gets 420 listing it (RFC 8489 §6.3.1.1)', async () => {
  const socket = await udpSocket();
  const transactionId = newTransactionId();
  socket.send(encodeMessage({ method: Method.Binding, messageClass: MessageClass.Request, transactionId,
    attributes: [{ type: 0x7f01, value: new Uint8Array(4) }, room] }), primary.port, primary.address);
  const [data] = await once(socket, 'message') as [Buffer];
  const response = decodeMessage(data);
  assert.equal(response.messageClass, MessageClass.ErrorResponse);
  assert.deepEqual(unknownAttributes.decode(getAttribute(response, AttrType.UnknownAttributes)!), [0x7f01]);
});

test('no amplification: a 20-byte request gets only the essential attributes; SOFTWARE and PADDING fit the request', async () => {
  const socket = await udpSocket();
  const client = new StunUdpClient(socket);
  const small = await client.request(primary);
  assert.equal(getAttribute(small.message, AttrType.Software), undefined, 'SOFTWARE would make the response bigger than the request');
  assert.equal(small.message.raw.byteLength, 20 + 12 * 3);
  const padded = await client.request(primary, { attributes: [{ type: AttrType.Padding, value: padding.encode(400) }] });
  assert.ok(getAttribute(padded.message, AttrType.Software), 'SOFTWARE fits a large request');
  assert.ok(padded.message.raw.byteLength <= 20 + 4 + 400, `response ${padded.message.raw.byteLength} bytes > request`);
  client.close();
});

test('STUN over TCP answers Binding with the connection source', async () => {
  const client = await StunTcpClient.connect(primary);
  const response = await client.request();
  const mapped = xorMappedAddress.decode(getAttribute(response, AttrType.XorMappedAddress)!, response.transactionId);
  assert.deepEqual(mapped, { family: 4, address: '127.0.0.1', port: client.socket.localPort });
  await assert.rejects(client.request({ attributes: [{ type: AttrType.ChangeRequest, value: changeRequest.encode({ changeIp: true, changePort: true }) }] }),
    (e: unknown) => e instanceof StunErrorResponseError && e.status === 420);
  client.close();
});

test('garbage over TCP closes that connection only; garbage over UDP is dropped; the server keeps answering', async () => {
  const tcp = await StunTcpClient.connect(primary);
  tcp.socket.write(Buffer.from([0xff, 0xff, 0xff, 0xff]));
  await once(tcp.socket, 'close');
  const socket = await udpSocket();
  for (let i = 0; i < 2000; i++) socket.send(randomBytes(1 + (i % 300)), primary.port, primary.address);
  const client = new StunUdpClient(socket);
  const { message } = await client.request(primary);
  assert.equal(message.messageClass, MessageClass.SuccessResponse);
  assert.ok(server.stats.dropped >= 1);
  client.close();
});

test('a transaction nobody answers fails with TransactionTimeoutError after its schedule', async () => {
  const silent = await udpSocket();
  const socket = await udpSocket();
  const client = new StunUdpClient(socket, { retransmission: { rto: 20, rc: 3, rm: 2 } });
  const started = Date.now();
  await assert.rejects(client.request({ family: 4, address: '127.0.0.1', port: silent.address().port }),
    (e: unknown) => e instanceof TransactionTimeoutError && e.code === 'ERR_STUN_TIMEOUT' && /3 transmissions in 100 ms/.test(e.message));
  assert.ok(Date.now() - started >= 95);
  client.close();
});

test('closing a client fails its outstanding transactions with ERR_STUN_CLOSED', async () => {
  const silent = await udpSocket();
  const client = new StunUdpClient(await udpSocket());
  const pending = client.request({ family: 4, address: '127.0.0.1', port: silent.address().port });
  client.close();
  await assert.rejects(pending, (e: unknown) => NatpunchError.is(e) && e.code === 'ERR_STUN_CLOSED');
});

/** An RFC 3489 Binding request: no magic cookie, a 128-bit transaction id, optional CHANGE-REQUEST. */
function classicRequest(id: Buffer, change?: { changeIp: boolean; changePort: boolean }): Buffer {
  const body = change ? Buffer.concat([Buffer.from([0x00, 0x03, 0x00, 0x04]), Buffer.from(changeRequest.encode(change))]) : Buffer.alloc(0);
  const header = Buffer.alloc(4);
  header.writeUInt16BE(0x0001, 0);
  header.writeUInt16BE(body.length, 2);
  return Buffer.concat([header, id, body]);
}

test('an RFC 3489 client gets its 128-bit id back with MAPPED-ADDRESS, SOURCE-ADDRESS and CHANGED-ADDRESS (RFC 8489 §11)', async () => {
  const socket = await udpSocket();
  const cases: [{ changeIp: boolean; changePort: boolean } | undefined, TransportAddress][] = [
    [undefined, primary], [{ changeIp: true, changePort: true }, server.addresses[3]!], [{ changeIp: false, changePort: true }, server.addresses[1]!],
  ];
  for (const [change, origin] of cases) {
    const id = randomBytes(16);
    socket.send(classicRequest(id, change), primary.port, primary.address);
    const [data, rinfo] = (await once(socket, 'message')) as [Buffer, dgram.RemoteInfo];
    assert.deepEqual({ address: rinfo.address, port: rinfo.port }, { address: origin.address, port: origin.port });
    assert.deepEqual(data.subarray(4, 20), id, 'the whole classic transaction id, cookie field included');
    const message = decodeMessage(data, { rfc3489: true });
    assert.equal(message.messageClass, MessageClass.SuccessResponse);
    assert.deepEqual(addressOf(message, AttrType.MappedAddress), { family: 4, address: '127.0.0.1', port: socket.address().port });
    assert.deepEqual(addressOf(message, RFC3489_SOURCE_ADDRESS), origin);
    assert.deepEqual(addressOf(message, RFC3489_CHANGED_ADDRESS), server.addresses[3]);
    // Nothing a classic client cannot parse: no XOR-MAPPED-ADDRESS, no RFC 5780 names, no FINGERPRINT.
    assert.deepEqual(message.attributes.map((a) => a.type), [AttrType.MappedAddress, RFC3489_SOURCE_ADDRESS, RFC3489_CHANGED_ADDRESS]);
  }
});

test('an RFC 3489 RESPONSE-ADDRESS (reflection to a third party) is refused with 420, not followed', async () => {
  const socket = await udpSocket();
  const id = randomBytes(16);
  const responseAddress = Buffer.from(mappedAddress.encode({ family: 4, address: '127.0.0.9', port: 9 }));
  // PADDING makes room for the 420 (an error over UDP is no larger than its request, decision 001).
  const request = Buffer.concat([Buffer.from([0x00, 0x01, 0x00, 4 + responseAddress.length + 4 + 64]), id, Buffer.from([0x00, 0x02, 0x00, responseAddress.length]), responseAddress,
    Buffer.from([0x00, 0x26, 0x00, 64]), Buffer.alloc(64)]);
  socket.send(request, primary.port, primary.address);
  const [data] = (await once(socket, 'message')) as [Buffer];
  const message = decodeMessage(data, { rfc3489: true });
  assert.equal(message.messageClass, MessageClass.ErrorResponse);
  assert.deepEqual(unknownAttributes.decode(getAttribute(message, AttrType.UnknownAttributes)!), [0x0002]);
  assert.deepEqual(data.subarray(4, 20), id);
});
