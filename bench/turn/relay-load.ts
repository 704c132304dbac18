/**
 * bench/turn/relay-load.ts: a TURN relay's data plane under load — ChannelData in, datagram out
 * to the peer, the peer's echo back in, ChannelData out to the client — for `natpunch serve` or
 * coturn, pinned to core 0, with this process (clients and echoing peer) pinned to core 1.
 *
 *   node dist/bench/turn/relay-load.js [natpunch|coturn] [--tree DIR] [--seconds 5] [--clients 4] [--window 64] [--size 1000] [--trace-gc]
 *
 * Each client allocates over UDP, binds a channel to the peer (127.0.0.2) and keeps `window`
 * messages of `size` bytes in flight (closed loop: a message echoed back is replaced by the
 * next). Prints one JSON line: round trips per second (each is two relayed datagrams), the
 * server's CPU (user + system, cores' worth, from /proc) and relayed datagrams per server
 * CPU-second, the figure least disturbed by other load. The clients and the peer read and send
 * through native/udp-batch where it is built (src/punch/udp-receive.ts, AddressedSender), so that
 * they are not the limit. `--trace-gc` (natpunch only) runs the server with node's --trace-gc and
 * adds the young-generation collections (scavenges) per 1000 relayed datagrams during the
 * measured seconds: the garbage the relay's hot path makes. Decision 009 reports the runs.
 */
import dgram from 'node:dgram';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { join } from 'node:path';
import { TurnClient } from '../../src/turn/client.js';
import { udpTransport } from '../../src/turn/client-transport.js';
import { CHANNEL_DATA_HEADER, writeChannelDataHeader } from '../../src/turn/channel-data.js';
import { receiveDatagrams } from '../../src/punch/udp-receive.js';
import { AddressedSender } from '../../src/punch/udp-batch.js';
import { delay, freePort, pinned, processCpu } from '../support/process.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1]! : fallback;
};
const target = args[0] === 'coturn' ? 'coturn' : 'natpunch';
const tree = option('tree', process.cwd());
const seconds = Number(option('seconds', '5'));
const clients = Number(option('clients', '4'));
const window = Number(option('window', '64'));
const size = Number(option('size', '1000'));
const traceGc = args.includes('--trace-gc') && target === 'natpunch';
const PEER_IP = '127.0.0.2';
let scavenges = 0;

/** user+system CPU seconds of a process. */
function cpuSeconds(pid: number): number {
  const { user, system } = processCpu(pid);
  return user + system;
}

async function startServer(port: number): Promise<{ pid: number; stop: () => void }> {
  const [command, argv] = target === 'coturn'
    ? pinned(0, 'turnserver', ['-n', '--no-cli', '--no-tls', '--no-dtls', '-L', '127.0.0.1', '--listening-port', String(port), '--relay-ip', '127.0.0.1',
      '--lt-cred-mech', '--user', 'alice:wonderland', '--realm', 'bench', '--allow-loopback-peers', '--cli-password', 'x', '--log-file', 'stdout', '--simple-log'])
    : pinned(0, process.execPath, [...(traceGc ? ['--trace-gc'] : []), join(tree, 'dist/src/cli/main.js'), 'serve', '--address', '127.0.0.1', '--port', String(port), '--http-port', String(await freePort()),
      '--turn-user', 'alice:wonderland', '--relay-allow', '127.0.0.0/8', '--log-level', 'warn']);
  const child = spawn(command, argv, { stdio: ['ignore', traceGc ? 'pipe' : 'ignore', 'ignore'] });
  if (traceGc) createInterface({ input: child.stdout! }).on('line', (line) => { if (line.includes('Scavenge')) scavenges++; });
  await delay(target === 'coturn' ? 1500 : 2500);
  // taskset/nice exec the server in place, so the child's pid is the server's.
  return { pid: child.pid!, stop: () => child.kill('SIGTERM') };
}

async function bound(address: string): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
  socket.bind(0, address);
  await once(socket, 'listening');
  return socket;
}

async function main(): Promise<void> {
  const port = await freePort();
  const server = await startServer(port);
  const serverAddress = { family: 4 as const, address: '127.0.0.1', port };
  // The peer echoes every datagram back where it came from (the client's relayed address).
  const peer = await bound(PEER_IP);
  const peerSender = new AddressedSender(peer);
  receiveDatagrams(peer, (batch) => {
    for (let i = 0; i < batch.count; i++) peerSender.sendRange(batch.slab, batch.offset(i), batch.offset(i) + batch.length(i), batch.port(i), batch.address(i));
  });
  let roundTrips = 0;
  let measuring = false;
  const message = Buffer.alloc(CHANNEL_DATA_HEADER + size, 0x5a);
  const senders: Array<() => void> = [];
  for (let c = 0; c < clients; c++) {
    const socket = await bound('127.0.0.1');
    const transport = udpTransport(socket, serverAddress);
    const client = new TurnClient(transport);
    // The client's TURN transactions through the transport; ChannelData from the server counted here.
    const sender = new AddressedSender(socket);
    let channel = 0;
    let inFlight = 0;
    let back = 0;
    receiveDatagrams(socket, (batch) => {
      for (let i = 0; i < batch.count; i++) {
        const first = batch.slab[batch.offset(i)]!;
        if ((first & 0xc0) === 0x40 && channel !== 0) {
          if (measuring) roundTrips++;
          back++; // one came back, the next goes out: as many in flight as before
          writeChannelDataHeader(message, 0, channel, size);
          sender.send(message, port, '127.0.0.1');
        } else {
          transport.feed(batch.copy(i), { address: batch.address(i), port: batch.port(i) });
        }
      }
    });
    await client.allocate({ username: 'alice', password: 'wonderland' });
    channel = await client.bindChannel({ family: 4, address: PEER_IP, port: peer.address().port });
    // Fills the window, and refills it after losses (a full socket buffer anywhere on the loop),
    // so that they do not shrink the load: when nothing came back for 20 ms, all in flight are lost.
    let answered = 0;
    senders.push(() => {
      const top = (): void => {
        for (; inFlight < window; inFlight++) {
          writeChannelDataHeader(message, 0, channel, size);
          sender.send(message, port, '127.0.0.1');
        }
      };
      top();
      setInterval(() => {
        if (back === answered) inFlight = 0;
        answered = back;
        top();
      }, 20).unref();
    });
  }
  for (const start of senders) start();
  await delay(1000); // warm-up
  measuring = true;
  const cpu0 = cpuSeconds(server.pid);
  const scavenges0 = scavenges;
  const t0 = process.hrtime.bigint();
  await delay(seconds * 1000);
  measuring = false;
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = cpuSeconds(server.pid) - cpu0;
  const rate = roundTrips / elapsed;
  console.log(JSON.stringify({
    target, tree, clients, window, size, roundTripsPerSecond: Math.round(rate), relayedPerSecond: Math.round(2 * rate),
    serverCpu: Number((cpu / elapsed).toFixed(2)), relayedPerCpuSecond: Math.round((2 * roundTrips) / cpu),
    ...(traceGc ? { scavengesPer1000Relayed: Number(((scavenges - scavenges0) / (2 * roundTrips) * 1000).toFixed(3)) } : {}),
  }));
  server.stop();
  process.exit(0);
}

await main();
