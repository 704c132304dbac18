/**
 * The node:dgram ceiling for bench/stun: the least work any JavaScript server on `node:dgram`
 * does per request (one 'message' event, one `send`), with nothing else. Like echo.c it answers each
 * datagram with itself turned into a Binding success response (type 0x0101), so the load
 * generator's checks apply unchanged. Socket buffers as StunServer sets them.
 *
 *   node dist/bench/stun/node-echo.js PORT   — prints "ready PORT" once bound; runs until killed
 */

import dgram from 'node:dgram';

const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
socket.on('message', (message, from) => {
  if (message.length < 20 || message[0]! > 1) return;
  message[0] = 0x01;
  message[1] = 0x01;
  socket.send(message, from.port, from.address);
});
socket.bind(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`ready ${socket.address().port}\n`);
});
process.once('SIGTERM', () => socket.close(() => process.exit(0)));
