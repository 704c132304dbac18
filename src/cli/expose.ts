/**
 * `natpunch expose [HOST:]PORT`: publish a local TCP service to peers. Registers like listen,
 * accepts any number of connections at once; each mux stream a peer opens ('tcp') becomes one
 * TCP connection to HOST:PORT (default host 127.0.0.1), joined both ways. A connect that fails
 * resets that stream with CONNECT_REFUSED or CONNECT_FAILED and the reason, which forward
 * reports. Runs until SIGINT/SIGTERM.
 */
import { connect as tcpConnect } from 'node:net';
import { UsageError } from '../errors.js';
import { MuxError, MuxErrorCode, MuxSession, type MuxStream } from '../mux/index.js';
import type { Connection } from '../peer/peer.js';
import { type CommandSpec, jsonFlag, keyFlag, parseCommand, serverFlag, usageLine, usageText } from './args.js';
import { allowFileFlag, allowFlag, allowList, bindAddress, bindFlag, checkServer, noReportFlag, startPeer } from './peer-flags.js';
import { eventSink, type EventSink } from './events.js';
import { formatHostPort, type HostPort, parseHostPort } from './host-port.js';
import { flushed } from './flushed.js';
import { joinSocketAndStream } from './tcp-stream.js';
import { untilSignal } from './until-signal.js';

export const exposeSpec: CommandSpec = {
  name: 'expose',
  positionals: '[HOST:]PORT',
  summary: 'Publish a local TCP service (HOST defaults to 127.0.0.1) to peers, end-to-end encrypted: each TCP connection a\n'
    + 'peer accepts with natpunch forward reaches it. Prints this peer\'s id; runs until Ctrl-C.',
  flags: { server: serverFlag, key: keyFlag, allow: allowFlag, 'allow-file': allowFileFlag, bind: bindFlag, 'no-report': noReportFlag, json: jsonFlag },
  notes: ['Without --allow or --allow-file, any peer that knows the id may reach the service: give it only to those you trust.'],
  examples: ['natpunch expose 22 --server ws://203.0.113.7:8080/ --allow-file ~/.natpunch/allowed'],
};

export const exposeUsage = usageLine(exposeSpec);
/** The OPEN target forward uses: one TCP connection to the exposed service. */
export const TCP_TARGET = 'tcp';

export async function exposeCommand(argv: string[]): Promise<number> {
  const { values: parsed, positionals } = parseCommand(exposeSpec, argv);
  const values = parsed as { server?: string; key?: string; allow?: string[]; 'allow-file'?: string; bind?: string; 'no-report'?: boolean; json?: boolean };
  const [address, ...extra] = positionals;
  if (!address || extra.length) throw new UsageError(`natpunch expose: give exactly one [HOST:]PORT, the local TCP service to publish (e.g. 8080 or 127.0.0.1:22).\n${usageText(exposeSpec)}`);
  const target = parseHostPort('expose', 'service', address);
  const server = checkServer('expose', values.server, usageText(exposeSpec));
  const allow = await allowList('expose', values.allow, values['allow-file']);
  const bind = bindAddress('expose', values.bind);
  const events = eventSink(values.json === true);
  const { stopped } = untilSignal();
  const peer = await startPeer({ server, keyFile: values.key, bindAddress: bind, report: values['no-report'] !== true, ...(allow ? { allow } : {}) });
  const sessions = new Set<MuxSession>();
  const connections = new Set<Connection>();
  try {
    peer.on('connection-error', (error: Error) => events.error(error));
    const service = formatHostPort(target.host, target.port);
    peer.on('connection', (connection: Connection) => {
      events.connected(connection);
      connections.add(connection);
      connection.once('close', () => connections.delete(connection));
      const session = serve(connection, target, events);
      sessions.add(session);
      session.once('close', () => sessions.delete(session));
    });
    events.ready(peer.peerId, {
      fields: { service },
      text: `exposing ${service} as ${peer.peerId}\n  (on the other machine: natpunch forward ${peer.peerId} --listen PORT --server URL)`,
    });
    await stopped;
    return 0;
  } finally {
    for (const session of sessions) session.close('natpunch expose is stopping');
    await flushed(connections);
    await peer.close();
  }
}

/** One peer's connection: each stream it opens reaches the service. */
function serve(connection: Connection, target: HostPort, events: EventSink): MuxSession {
  const session = new MuxSession(connection, { initiator: false });
  session.on('stream', (stream: MuxStream, purpose: string) => {
    if (purpose !== TCP_TARGET) {
      stream.reset(MuxErrorCode.RefusedStream, `natpunch expose serves '${TCP_TARGET}' streams, not ${JSON.stringify(purpose)}`);
      return;
    }
    openService(stream, target);
  });
  session.on('close', (error?: MuxError) => {
    if (error) events.error(new MuxError(error.muxCode, `the connection from ${connection.remotePeerId} ended: ${error.message}`, { cause: error }));
  });
  return session;
}

function openService(stream: MuxStream, target: HostPort): void {
  const service = formatHostPort(target.host, target.port);
  const socket = tcpConnect({ host: target.host, port: target.port, allowHalfOpen: true });
  const abandon = (): void => { socket.destroy(); };
  stream.once('error', abandon); // the peer gave up before the service answered
  socket.once('error', (error: NodeJS.ErrnoException) => {
    const refused = error.code === 'ECONNREFUSED';
    stream.reset(refused ? MuxErrorCode.ConnectRefused : MuxErrorCode.ConnectFailed,
      refused ? `${service} refused the connection on the exposing side (is the service running?)` : `${service} on the exposing side: ${error.message}`);
  });
  socket.once('connect', () => {
    stream.off('error', abandon);
    socket.removeAllListeners('error');
    joinSocketAndStream(socket, stream);
  });
}
