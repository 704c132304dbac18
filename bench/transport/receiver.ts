/**
 * The receiving half of bench/transport/stream.ts, run in a worker thread so that sender and
 * receiver each have an event loop (and a core) of their own, as two peers would.
 *
 * Commands from the parent (one at a time):
 * - {kind:'raw'}: bind, count plain datagrams; after {kind:'done'} report once no datagram has
 *   arrived for QUIET_MS.
 * - {kind:'stream'}: bind, then on {kind:'connect', port} run a natpunch stream to that port,
 *   read to the end, report, end our side and close when the stream does.
 * Every report measures at the receiver, from the first byte to the last.
 */
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';
import { createStream } from '../../src/transport/stream-connection.js';
import { createUdpPath } from '../../src/transport/udp-path.js';

export const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
const QUIET_MS = 300;

export type ReceiverCommand = { kind: 'raw' } | { kind: 'stream' } | { kind: 'connect'; port: number } | { kind: 'done' };
export type ReceiverReport =
  | { kind: 'listening'; port: number }
  | { kind: 'report'; bytes: number; datagrams: number; seconds: number; ok: boolean };

/** A UDP socket on 127.0.0.1 with large buffers and no per-send DNS lookup, the same for every target. */
export async function benchSocket(): Promise<Socket> {
  const socket = createSocket({
    type: 'udp4',
    lookup: (address, _options, callback) => (callback as (error: null, address: string, family: number) => void)(null, address, 4),
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.setRecvBufferSize(SOCKET_BUFFER_BYTES);
  socket.setSendBufferSize(SOCKET_BUFFER_BYTES);
  return socket;
}

function post(report: ReceiverReport): void {
  parentPort!.postMessage(report);
}

async function receiveRaw(): Promise<void> {
  const socket = await benchSocket();
  let bytes = 0;
  let datagrams = 0;
  let firstAt = 0;
  let lastAt = 0;
  socket.on('message', (message: Buffer) => {
    lastAt = performance.now();
    if (datagrams === 0) firstAt = lastAt;
    datagrams++;
    bytes += message.length;
  });
  post({ kind: 'listening', port: socket.address().port });
  await nextCommand('done');
  await new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (performance.now() - lastAt < QUIET_MS) return;
      clearInterval(check);
      resolve();
    }, QUIET_MS / 4);
  });
  socket.close();
  post({ kind: 'report', bytes, datagrams, seconds: (lastAt - firstAt) / 1000, ok: datagrams > 0 });
}

async function receiveStream(): Promise<void> {
  const socket = await benchSocket();
  post({ kind: 'listening', port: socket.address().port });
  const command = await nextCommand('connect');
  const path = createUdpPath(socket, { address: '127.0.0.1', port: command.port });
  const stream = createStream(path);
  let bytes = 0;
  let firstAt = 0;
  let lastAt = 0;
  stream.on('data', (chunk: Buffer) => {
    lastAt = performance.now();
    if (bytes === 0) firstAt = lastAt;
    bytes += chunk.length;
  });
  await new Promise<void>((resolve, reject) => {
    stream.once('end', resolve);
    stream.once('error', reject);
  });
  const datagrams = stream.stats.packetsReceived;
  stream.end();
  await new Promise<void>((resolve) => stream.once('close', () => resolve()));
  path.close();
  socket.close();
  post({ kind: 'report', bytes, datagrams, seconds: (lastAt - firstAt) / 1000, ok: !stream.errored });
}

const pending: ReceiverCommand[] = [];
const waiters: Array<(command: ReceiverCommand) => void> = [];

function nextCommand<K extends ReceiverCommand['kind']>(kind: K): Promise<Extract<ReceiverCommand, { kind: K }>> {
  return new Promise((resolve, reject) => {
    const take = (command: ReceiverCommand): void => {
      if (command.kind === kind) resolve(command as Extract<ReceiverCommand, { kind: K }>);
      else reject(new Error(`bench/transport receiver: got ${command.kind}, expected ${kind}`));
    };
    const queued = pending.shift();
    if (queued !== undefined) take(queued);
    else waiters.push(take);
  });
}

if (parentPort !== null) {
  parentPort.on('message', (command: ReceiverCommand) => {
    if (command.kind === 'raw' || command.kind === 'stream') {
      const run = command.kind === 'raw' ? receiveRaw() : receiveStream();
      run.catch((error: unknown) => {
        post({ kind: 'report', bytes: 0, datagrams: 0, seconds: 0, ok: false });
        process.stderr.write(`bench/transport receiver: ${(error as Error).message}\n`);
      });
      return;
    }
    const waiter = waiters.shift();
    if (waiter !== undefined) waiter(command);
    else pending.push(command);
  });
}
