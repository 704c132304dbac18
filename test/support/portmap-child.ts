/**
 * Runs on a lab LAN host: listens on a port (UDP or TCP), maps it with natpunch's own port
 * mapping client, reports the mapping, waits for one datagram or connection through it, then
 * deletes the mapping. One JSON line per step on stdout:
 *   {"event":"mapped",...PortMappingInfo}  {"event":"received","from":"ip:port","data":"..."}
 *   {"event":"closed"}  or  {"event":"error","code":...,"reason":...,"message":...}
 * With `renewals`, it first waits for that many renewals ({"event":"renewed",...} each).
 * argv[2]: JSON {protocol, internalPort, methods, lifetimeSeconds?, renewals?}
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { mapPort, type PortMapMethod } from '../../src/portmap/index.js';
import { NatpunchError, PortMapError } from '../../src/errors.js';

interface Args { protocol: 'udp' | 'tcp'; internalPort: number; methods: PortMapMethod[]; lifetimeSeconds?: number; renewals?: number }
const args = JSON.parse(process.argv[2]!) as Args;
const print = (event: Record<string, unknown>): void => { process.stdout.write(`${JSON.stringify(event)}\n`); };

async function listen(): Promise<{ received: Promise<{ from: string; data: string }>; close(): void }> {
  if (args.protocol === 'udp') {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(args.internalPort, resolve));
    const received = new Promise<{ from: string; data: string }>((resolve) => {
      socket.once('message', (data, from) => resolve({ from: `${from.address}:${from.port}`, data: String(data) }));
    });
    return { received, close: () => socket.close() };
  }
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(args.internalPort, '0.0.0.0', resolve));
  const received = new Promise<{ from: string; data: string }>((resolve) => {
    server.once('connection', (socket) => {
      let data = '';
      socket.on('data', (chunk) => { data += String(chunk); });
      socket.on('end', () => { resolve({ from: `${socket.remoteAddress}:${socket.remotePort}`, data }); socket.end(); });
    });
  });
  return { received, close: () => server.close() };
}

async function main(): Promise<void> {
  const listener = await listen();
  try {
    const mapping = await mapPort({ protocol: args.protocol, internalPort: args.internalPort, methods: args.methods, lifetimeSeconds: args.lifetimeSeconds ?? 120, timeoutMs: 15_000 });
    print({ event: 'mapped', ...mapping.info() });
    for (let i = 0; i < (args.renewals ?? 0); i++) {
      const [grant] = await new Promise<[unknown]>((resolve, reject) => {
        mapping.once('renewed', (g) => resolve([g]));
        mapping.once('renew-failed', (error, final) => { if (final) reject(error); });
      });
      print({ event: 'renewed', n: i + 1, ...(grant as object) });
    }
    print({ event: 'received', ...(await listener.received) });
    await mapping.close();
    print({ event: 'closed' });
  } catch (error) {
    const e = error as Error;
    print({ event: 'error', code: NatpunchError.is(e) ? e.code : 'ERR', reason: e instanceof PortMapError ? e.reason : undefined, message: e.message });
    process.exitCode = 1;
  } finally {
    listener.close();
  }
}

await main();
