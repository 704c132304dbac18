/**
 * `natpunch forward PEER_ID --listen [HOST:]PORT`: like ssh -L. Listens on HOST:PORT (default
 * host 127.0.0.1); each TCP connection accepted there becomes one mux stream to the peer, which
 * runs `natpunch expose` and joins it to its service. One peer connection carries them all;
 * when it drops, the next TCP connection connects again. Runs until SIGINT/SIGTERM.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { NatpunchError, UsageError } from '../errors.js';
import { isPeerId } from '../identity/index.js';
import { MuxError, MuxSession, type MuxStream } from '../mux/index.js';
import type { Connection, Peer } from '../peer/peer.js';
import { type CommandSpec, jsonFlag, keyFlag, parseCommand, serverFlag, usageLine, usageText } from './args.js';
import { bindAddress, bindFlag, checkServer, noReportFlag, startPeer } from './peer-flags.js';
import { transportFlag } from './connect.js';
import { eventSink, type EventSink } from './events.js';
import { TCP_TARGET } from './expose.js';
import { formatHostPort, type HostPort, parseHostPort } from './host-port.js';
import { flushed } from './flushed.js';
import { joinSocketAndStream } from './tcp-stream.js';
import { untilSignal } from './until-signal.js';

export const forwardSpec: CommandSpec = {
  name: 'forward',
  positionals: 'PEER_ID',
  summary: 'Like ssh -L: each TCP connection accepted on --listen reaches the service the peer (natpunch expose) publishes,\n'
    + 'all over one end-to-end encrypted connection to it. Runs until Ctrl-C.',
  flags: {
    listen: {
      type: 'string', value: '[HOST:]PORT', required: true, help: 'where local programs connect (HOST defaults to 127.0.0.1; port 0 picks one, shown in the ready event)',
      example: '--listen 2222',
    },
    server: serverFlag,
    key: keyFlag,
    transport: transportFlag,
    bind: bindFlag,
    'no-report': noReportFlag,
    json: jsonFlag,
  },
  examples: ['natpunch forward ah4ytbnkeoro34qprv2gqnc5vebpxztoiyafb4bpvnjm4uqycouu6bdq --listen 2222 --server ws://203.0.113.7:8080/   # then: ssh -p 2222 localhost'],
};

export const forwardUsage = usageLine(forwardSpec);
const transports = ['auto', 'udp', 'tcp', 'relay'] as const;
type Transport = (typeof transports)[number];

export async function forwardCommand(argv: string[]): Promise<number> {
  const { values: parsed, positionals } = parseCommand(forwardSpec, argv);
  const values = parsed as { listen?: string; server?: string; key?: string; transport?: string; bind?: string; 'no-report'?: boolean; json?: boolean };
  const [peerId, ...extra] = positionals;
  if (!peerId || extra.length) throw new UsageError(`natpunch forward: give exactly one PEER_ID (the exposing side prints it with 'natpunch expose').\n${usageText(forwardSpec)}`);
  if (!isPeerId(peerId)) throw new UsageError(`natpunch forward: ${JSON.stringify(peerId)} is not a peer id (check for a typo: ids carry a checksum)`);
  if (!values.listen) throw new UsageError(`natpunch forward: --listen [HOST:]PORT is required (where local programs connect, e.g. --listen 8080).\n${usageText(forwardSpec)}`);
  const local = parseHostPort('forward', '--listen', values.listen, { allowZero: true });
  const serverUrl = checkServer('forward', values.server, usageText(forwardSpec));
  const transport = values.transport as Transport;
  if (!transports.includes(transport)) throw new UsageError(`natpunch forward: --transport ${values.transport}: expected auto, udp, tcp or relay`);
  const bind = bindAddress('forward', values.bind);
  const events = eventSink(values.json === true);
  const { stopped } = untilSignal();
  const peer = await startPeer({ server: serverUrl, keyFile: values.key, bindAddress: bind, report: values['no-report'] !== true });
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
  const sessions = new SessionToPeer(peer, peerId, transport, events);
  try {
    let bound: string;
    try {
      bound = await listen(server, local);
    } catch (error) {
      events.error(error);
      return 1;
    }
    // Connections accepted while the first connect runs wait for it (sessions.get() is shared).
    server.on('connection', (socket: Socket) => void forwardOne(socket, sessions, events));
    try {
      await sessions.get();
    } catch (error) {
      events.error(error);
      return 1;
    }
    events.ready(peer.peerId, { fields: { listen: bound, peer: peerId }, text: `forwarding ${bound} to ${peerId} (like ssh -L)` });
    await stopped;
    return 0;
  } finally {
    server.close();
    await sessions.close();
    await peer.close();
  }
}

/** Listen on HOST:PORT; resolves with the bound "host:port" (PORT 0 picks a free one). */
async function listen(server: Server, local: HostPort): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(local.port, local.host, () => { server.off('error', reject); resolve(); });
  }).catch((error: NodeJS.ErrnoException) => {
    const why = error.code === 'EADDRINUSE' ? 'the port is in use (pick another --listen port)'
      : error.code === 'EADDRNOTAVAIL' ? 'this machine has no such address (use 127.0.0.1 or one of its own)'
        : error.code === 'EACCES' ? 'permission denied (ports below 1024 need root)' : error.message;
    throw new NatpunchError('ERR_TRANSPORT', `cannot listen on ${formatHostPort(local.host, local.port)}: ${why}`);
  });
  const address = server.address() as { address: string; port: number };
  return formatHostPort(address.address, address.port);
}

/** The one session to the peer, made on demand and again after it dropped. */
class SessionToPeer {
  #current: Promise<MuxSession> | undefined;
  #session: MuxSession | undefined;
  #connection: Connection | undefined;
  #closed = false;

  constructor(readonly peer: Peer, readonly peerId: string, readonly transport: Transport, readonly events: EventSink) {}

  get(): Promise<MuxSession> {
    if (this.#closed) return Promise.reject(new MuxError(0, 'natpunch forward is stopping'));
    this.#current ??= this.#connect();
    return this.#current;
  }

  #connect(): Promise<MuxSession> {
    const attempt = (async () => {
      const connection = await this.peer.connect(this.peerId, { transport: this.transport });
      this.events.connected(connection);
      const session = new MuxSession(connection, { initiator: true });
      this.#connection = connection;
      this.#session = session;
      session.once('close', (error?: MuxError) => {
        if (this.#current === attempt) this.#current = undefined;
        if (this.#closed) return;
        const next = 'the next TCP connection connects again';
        if (error) this.events.error(new MuxError(error.muxCode, `the connection to ${this.peerId} dropped (${error.message}); ${next}`, { cause: error }));
        else this.events.info(`the connection to ${this.peerId} closed; ${next}`);
      });
      return session;
    })();
    attempt.catch(() => { if (this.#current === attempt) this.#current = undefined; });
    return attempt;
  }

  /** GO_AWAY to the peer, and its delivery awaited (bounded). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#connection && !this.#connection.destroyed) {
      this.#session?.close('natpunch forward is stopping');
      await flushed([this.#connection]);
    }
  }
}

/** One accepted TCP connection: a stream to the peer, joined to it; failures are reported, the forwarder goes on. */
async function forwardOne(socket: Socket, sessions: SessionToPeer, events: EventSink): Promise<void> {
  const from = `${socket.remoteAddress}:${socket.remotePort}`;
  socket.on('error', () => undefined); // reported through the stream (joinSocketAndStream)
  let stream: MuxStream;
  try {
    stream = (await sessions.get()).open(TCP_TARGET);
  } catch (error) {
    events.error(named(`cannot forward the TCP connection from ${from}: no connection to ${sessions.peerId}`, error));
    socket.resetAndDestroy();
    return;
  }
  stream.on('error', (error: Error) => events.error(named(`the TCP connection from ${from} through ${sessions.peerId} failed`, error)));
  joinSocketAndStream(socket, stream);
  socket.resume();
}

/** `error`, its message prefixed with what failed, its code kept. */
function named(what: string, error: unknown): NatpunchError {
  const message = `${what}: ${(error as Error)?.message ?? String(error)}`;
  return NatpunchError.is(error) ? new NatpunchError(error.code, message, { cause: error }) : new NatpunchError('ERR_TRANSPORT', message, { cause: error });
}
