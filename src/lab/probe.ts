/**
 * Small UDP/TCP probes that run inside lab namespaces and print one JSON line: the lab's own
 * instruments for showing what a NAT does, independent of natpunch's STUN code.
 *
 * A `reflect` process on the server answers each datagram with the source address it saw, from
 * whichever of its sockets the request names, which is what RFC 5780's tests need: the mapped
 * address per destination (mapping behaviour) and whether answers from another address or port
 * get through (filtering behaviour).
 *
 * Run as `node probe.js '<json ProbeRequest>'`; `probeArgv` builds that command line.
 * @see RFC 5780 §4.3 (mapping), §4.4 (filtering)
 */

import { createSocket, type Socket, type RemoteInfo } from 'node:dgram';
import { connect, createServer, isIPv6 } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LabError } from '../errors.js';

export type ProbeRequest =
  /**
   * Answer datagrams on every `bind` endpoint, and TCP connections there with the source seen;
   * prints {"ready":true} once bound.
   */
  | { mode: 'reflect'; bind: string[] }
  /** One socket asks each target in turn what source it saw. */
  | { mode: 'mapping'; targets: string[]; localPort?: number }
  /** A fresh socket contacts `target`, then asks it to answer from each `via` endpoint. */
  | { mode: 'filtering'; target: string; via: string[]; waitMs?: number }
  /** `sockets` fresh sockets, opened together, each asks `target` for its mapping. */
  | { mode: 'allocation'; target: string; sockets: number }
  /** Learn the mapping from `reflector`, print it, then echo (and print) whatever else arrives. */
  | { mode: 'peer'; reflector: string; localPort?: number }
  /** Learn the mapping (if `reflector`), then send to `target` until an echo comes back. */
  | { mode: 'ping'; target: string; reflector?: string; waitMs?: number }
  /** Send `count` numbered datagrams to a reflector, then ask how many arrived. */
  | { mode: 'flood'; target: string; count: number; session: string }
  /** Send `count` datagrams and exit. */
  | { mode: 'send'; target: string; count: number; localPort?: number }
  /** Connect over TCP to a reflector and report the source address it saw. */
  | { mode: 'tcp-mapping'; target: string; timeoutMs?: number }
  /** Open a TCP connection and report how it ended. */
  | { mode: 'tcp-connect'; target: string; timeoutMs?: number };

export interface MappingResult { local: number; seen: (string | null)[] }
export interface FilteringResult { local: number; mapped: string; reached: Record<string, boolean> }
export interface AllocationResult { pairs: { local: number; mapped: string }[] }
export interface PeerEvent { mapped?: string; local?: number; from?: string; data?: string }
export interface PingResult { local: number; mapped: string | null; replied: boolean; from: string | null }
export interface FloodResult { sent: number; serverReceived: number; echoed: number }
export interface TcpMappingResult { local: number; seen: string | null }
export interface TcpConnectResult { result: 'connected' | 'refused' | 'timeout' | 'error'; code: string | null; ms: number }

/** Command line that runs `request` with this Node binary; give it to Host.exec or Host.spawn. */
export function probeArgv(request: ProbeRequest): string[] {
  return [process.execPath, fileURLToPath(new URL('./probe.js', import.meta.url)), JSON.stringify(request)];
}

/** "ip:port", an IPv6 address in brackets ("[2001:db8::1]:3478"). */
export function splitEndpoint(endpoint: string): { address: string; port: number } {
  const colon = endpoint.lastIndexOf(':');
  const port = Number(endpoint.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new LabError(`probe: endpoint ${JSON.stringify(endpoint)} is not ip:port`);
  }
  const host = endpoint.slice(0, colon);
  return { address: host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host, port };
}

const show = (info: { address: string; port: number }): string => isIPv6(info.address) ? `[${info.address}]:${info.port}` : `${info.address}:${info.port}`;

/** A UDP socket of the family of `toward` (an endpoint it will talk to), IPv4 when none is given. */
function bindSocket(endpoint: { address?: string; port: number }, toward?: string): Promise<Socket> {
  const address = endpoint.address ?? (toward === undefined ? undefined : splitEndpoint(toward).address);
  return new Promise((resolve, reject) => {
    const socket = createSocket(address !== undefined && isIPv6(address) ? 'udp6' : 'udp4');
    socket.once('error', reject);
    socket.bind(endpoint.port, endpoint.address, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

function send(socket: Socket, target: string, message: unknown): void {
  const { address, port } = splitEndpoint(target);
  socket.send(JSON.stringify(message), port, address);
}

/**
 * Send `message` to `target` every `intervalMs` until a datagram satisfying `accept` arrives or
 * `waitMs` passes. Resolves with the datagram, or null when nothing came: absence is an answer.
 */
function ask(socket: Socket, target: string, message: { id: number } & Record<string, unknown>, accept: (reply: Record<string, unknown>, from: RemoteInfo) => boolean, waitMs = 2000, intervalMs = 250): Promise<{ reply: Record<string, unknown>; from: RemoteInfo } | null> {
  return new Promise((resolve) => {
    const onMessage = (data: Buffer, from: RemoteInfo): void => {
      let reply: unknown;
      try {
        reply = JSON.parse(data.toString('utf8'));
      } catch {
        return;
      }
      if (typeof reply !== 'object' || reply === null) return;
      const record = reply as Record<string, unknown>;
      if (record.id !== message.id || !accept(record, from)) return;
      finish({ reply: record, from });
    };
    const resend = setInterval(() => send(socket, target, message), intervalMs);
    const deadline = setTimeout(() => finish(null), waitMs);
    const finish = (value: { reply: Record<string, unknown>; from: RemoteInfo } | null): void => {
      clearInterval(resend);
      clearTimeout(deadline);
      socket.off('message', onMessage);
      resolve(value);
    };
    socket.on('message', onMessage);
    send(socket, target, message);
  });
}

let nextId = 1;

async function mappedBy(socket: Socket, target: string): Promise<string | null> {
  const answer = await ask(socket, target, { id: nextId++ }, (reply) => typeof reply.seen === 'string');
  return answer === null ? null : String(answer.reply.seen);
}

async function reflect(bind: string[]): Promise<void> {
  const sockets = new Map<string, Socket>();
  const sessions = new Map<string, number>();
  for (const endpoint of bind) {
    sockets.set(endpoint, await bindSocket(splitEndpoint(endpoint)));
    await listenTcp(endpoint);
  }
  for (const [local, socket] of sockets) {
    socket.on('message', (data, from) => {
      let request: Record<string, unknown>;
      try {
        request = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
      } catch {
        return;
      }
      const session = typeof request.session === 'string' ? request.session : null;
      if (request.op === 'count') {
        socket.send(JSON.stringify({ id: request.id, count: sessions.get(session ?? '') ?? 0 }), from.port, from.address);
        return;
      }
      if (session !== null) {
        if (!sessions.has(session) && sessions.size >= 1000) sessions.clear(); // bounded
        sessions.set(session, (sessions.get(session) ?? 0) + 1);
      }
      const via = typeof request.via === 'string' ? request.via : local;
      const out = sockets.get(via);
      if (out === undefined) return;
      out.send(JSON.stringify({ id: request.id, seen: show(from), at: local, n: request.n }), from.port, from.address);
    });
  }
  print({ ready: true });
}

/** TCP side of the reflector: one line with the source address seen, then close. */
function listenTcp(endpoint: string): Promise<void> {
  const { address, port } = splitEndpoint(endpoint);
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.end(`${JSON.stringify({ seen: `${socket.remoteAddress}:${socket.remotePort}` })}\n`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
}

function tcpMapping(target: string, timeoutMs = 2000): Promise<TcpMappingResult> {
  const { address, port } = splitEndpoint(target);
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    let text = '';
    let local = 0;
    const done = (seen: string | null): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ local, seen });
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    socket.once('connect', () => {
      local = socket.localPort ?? 0;
    });
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (text.includes('\n')) done((JSON.parse(text) as { seen: string }).seen);
    });
    socket.once('error', () => done(null));
  });
}

async function mapping(targets: string[], localPort = 0): Promise<MappingResult> {
  const socket = await bindSocket({ port: localPort }, targets[0]);
  const seen: (string | null)[] = [];
  for (const target of targets) seen.push(await mappedBy(socket, target));
  const local = socket.address().port;
  socket.close();
  return { local, seen };
}

async function filtering(target: string, via: string[], waitMs = 1000): Promise<FilteringResult> {
  const socket = await bindSocket({ port: 0 }, target);
  const mapped = await mappedBy(socket, target);
  if (mapped === null) throw new LabError(`probe filtering: no answer from ${target}, so filtering cannot be observed`);
  const reached: Record<string, boolean> = {};
  for (const endpoint of via) {
    const answer = await ask(socket, target, { id: nextId++, via: endpoint }, (_reply, from) => show(from) === endpoint, waitMs);
    reached[endpoint] = answer !== null;
  }
  const local = socket.address().port;
  socket.close();
  return { local, mapped, reached };
}

async function allocation(target: string, count: number): Promise<AllocationResult> {
  const sockets: Socket[] = [];
  const pairs: { local: number; mapped: string }[] = [];
  for (let i = 0; i < count; i++) {
    const socket = await bindSocket({ port: 0 }, target);
    sockets.push(socket);
    const mapped = await mappedBy(socket, target);
    if (mapped === null) throw new LabError(`probe allocation: no answer from ${target} to socket ${i + 1}`);
    pairs.push({ local: socket.address().port, mapped });
  }
  for (const socket of sockets) socket.close();
  return { pairs };
}

async function peer(reflector: string, localPort = 0): Promise<void> {
  const socket = await bindSocket({ port: localPort }, reflector);
  const mapped = await mappedBy(socket, reflector);
  print({ mapped, local: socket.address().port });
  const reflectorEndpoint = splitEndpoint(reflector);
  socket.on('message', (data, from) => {
    if (from.address === reflectorEndpoint.address && from.port === reflectorEndpoint.port) return;
    const text = data.toString('utf8');
    print({ from: show(from), data: text });
    let id: unknown = null;
    try {
      id = (JSON.parse(text) as { id?: unknown }).id;
    } catch {
      // not ours; echo anyway
    }
    socket.send(JSON.stringify({ id, echo: text }), from.port, from.address);
  });
}

async function ping(target: string, reflector: string | undefined, waitMs = 2000): Promise<PingResult> {
  const socket = await bindSocket({ port: 0 }, target);
  const mapped = reflector === undefined ? null : await mappedBy(socket, reflector);
  const answer = await ask(socket, target, { id: nextId++ }, (reply) => typeof reply.echo === 'string', waitMs);
  const local = socket.address().port;
  socket.close();
  return { local, mapped, replied: answer !== null, from: answer === null ? null : show(answer.from) };
}

async function flood(target: string, count: number, session: string): Promise<FloodResult> {
  const socket = await bindSocket({ port: 0 }, target);
  let echoed = 0;
  socket.on('message', (data) => {
    if (data.includes('"seen"')) echoed++;
  });
  const { address, port } = splitEndpoint(target);
  // Paced in small bursts so no socket buffer on the way overflows: lost must mean dropped by the lab.
  for (let n = 0; n < count; n++) {
    socket.send(JSON.stringify({ id: 0, session, n }), port, address);
    if (n % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const answer = await ask(socket, target, { id: nextId++, op: 'count', session }, (reply) => typeof reply.count === 'number', 30_000, 200);
  socket.close();
  if (answer === null) throw new LabError(`probe flood: ${target} never answered the count request`);
  return { sent: count, serverReceived: Number(answer.reply.count), echoed };
}

async function sendOnly(target: string, count: number, localPort = 0): Promise<{ sent: number; local: number }> {
  const socket = await bindSocket({ port: localPort }, target);
  const { address, port } = splitEndpoint(target);
  for (let n = 0; n < count; n++) {
    await new Promise<void>((resolve, reject) => socket.send(JSON.stringify({ id: 0, n }), port, address, (error) => (error ? reject(error) : resolve())));
  }
  const local = socket.address().port;
  socket.close();
  return { sent: count, local };
}

function tcpConnect(target: string, timeoutMs = 2000): Promise<TcpConnectResult> {
  const { address, port } = splitEndpoint(target);
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    const done = (result: TcpConnectResult['result'], code: string | null): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ result, code, ms: Date.now() - started });
    };
    const timer = setTimeout(() => done('timeout', null), timeoutMs);
    socket.once('connect', () => done('connected', null));
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code === 'ECONNREFUSED' ? 'refused' : 'error', error.code ?? null));
  });
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

async function main(argument: string | undefined): Promise<void> {
  if (argument === undefined) throw new LabError('usage: probe.js \'{"mode":"reflect","bind":["198.51.100.10:3478"]}\'');
  const request = JSON.parse(argument) as ProbeRequest;
  switch (request.mode) {
    case 'reflect':
      return reflect(request.bind);
    case 'peer':
      return peer(request.reflector, request.localPort);
    case 'mapping':
      return print(await mapping(request.targets, request.localPort));
    case 'filtering':
      return print(await filtering(request.target, request.via, request.waitMs));
    case 'allocation':
      return print(await allocation(request.target, request.sockets));
    case 'ping':
      return print(await ping(request.target, request.reflector, request.waitMs));
    case 'flood':
      return print(await flood(request.target, request.count, request.session));
    case 'send':
      return print(await sendOnly(request.target, request.count, request.localPort));
    case 'tcp-mapping':
      return print(await tcpMapping(request.target, request.timeoutMs));
    case 'tcp-connect':
      return print(await tcpConnect(request.target, request.timeoutMs));
    default:
      throw new LabError(`probe: unknown mode ${JSON.stringify((request as { mode?: unknown }).mode)}`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv[2]).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
