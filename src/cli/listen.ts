import { UsageError, type PortMapError } from '../errors.js';
import type { PortMappingInfo } from '../portmap/index.js';
import type { Connection, KeepaliveInfo, Peer, RefusedInfo } from '../peer/peer.js';
import type { RendezvousError } from '../rendezvous/errors.js';
import type { DisconnectInfo, ReconnectInfo } from '../rendezvous/reconnecting-client.js';
import { type CommandSpec, jsonFlag, keyFlag, parseCommand, serverFlag, usageLine, usageText } from './args.js';
import { eventSink } from './events.js';
import { Reported, allowFileFlag, allowFlag, allowList, bindAddress, bindFlag, checkServer, noReportFlag, portMappingFlag, progressFlag, progressForm, serveConnection, withPeer } from './peer-flags.js';
import type { ProgressForm } from './pipe-progress.js';

export const listenSpec: CommandSpec = {
  name: 'listen',
  summary: 'Register at the rendezvous server and accept connections from peers, piping each to stdin/stdout,\n'
    + 'end-to-end encrypted. Prints this peer\'s id: the other side runs natpunch connect ID.',
  flags: {
    server: serverFlag,
    key: keyFlag,
    once: { type: 'boolean', help: 'serve one connection, then exit: 0 when it ended cleanly, 1 when it (or the attempt to make it) failed', example: '--once > received.bin' },
    allow: allowFlag,
    'allow-file': allowFileFlag,
    'port-mapping': portMappingFlag,
    bind: bindFlag,
    progress: progressFlag,
    'no-report': noReportFlag,
    json: jsonFlag,
  },
  notes: [
    'Several peers: connections are served one at a time, in the order they arrive. Each one\'s data is',
    'written to stdout in turn; stdin goes to the first connection only (later ones are sent nothing:',
    'this side half-closes at once). Without --allow or --allow-file, any peer that knows the id may connect.',
    'Ctrl-C (or SIGTERM) aborts the connection being served (the peer sees ERR_PEER_ABORTED at once) and',
    'exits 130 (143). Each connection ends with a summary on stderr, or {"event":"closed",...} with --json.',
  ],
  examples: [
    'natpunch listen --server ws://203.0.113.7:8080/ --once > received',
    'natpunch listen --server ws://203.0.113.7:8080/ --allow-file ~/.natpunch/allowed --json',
  ],
};

export const listenUsage = usageLine(listenSpec);

export async function listenCommand(argv: string[]): Promise<number> {
  const { values } = parseCommand(listenSpec, argv);
  const server = checkServer('listen', values['server'] as string | undefined, usageText(listenSpec));
  const once = values['once'] === true;
  const allow = await allowList('listen', values['allow'] as string[] | undefined, values['allow-file'] as string | undefined);
  const bind = bindAddress('listen', values['bind'] as string | undefined);
  const events = eventSink(values['json'] === true);
  return withPeer(events, {
    server, keyFile: values['key'] as string | undefined, bindAddress: bind, keepaliveMs: pinnedKeepaliveMs(), portMapping: values['port-mapping'] === true, report: values['no-report'] !== true, ...(allow ? { allow } : {}),
  }, (peer, signal) => serve(peer, events, once, progressForm(values['progress'], values['json'] === true), signal));
}

/** Serve connections in turn until --once is done, the registration is refused for good, or an interrupt. */
async function serve(peer: Peer, events: ReturnType<typeof eventSink>, once: boolean, progress: ProgressForm | undefined, signal: AbortSignal): Promise<number> {
  // Connections are served one at a time: stdin/stdout can belong to only one of them.
  const queue: Connection[] = [];
  let wake: (() => void) | undefined;
  // With --once, the one attempt that failed is the end (not a wait for another).
  let failed: Error | undefined;
  peer.on('connection-error', (error: Error) => {
    events.error(error);
    if (once && queue.length === 0) {
      failed = error;
      wake?.();
    }
  });
  peer.on('refused', (info: RefusedInfo) => events.refused(info.peerId, info.reason));
  const interrupted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  void interrupted.then(() => wake?.());
  // Before ready: the mapping (or its failure) is settled by then, within its 2 s budget.
  if (peer.portMapping) events.portMapping(peer.portMapping);
  else if (peer.portMappingError) events.portMappingFailed(peer.portMappingError);
  peer.on('port-mapping', (info: PortMappingInfo) => events.portMapping(info));
  peer.on('port-mapping-failed', (error: PortMapError) => events.portMappingFailed(error));
  events.ready(peer.peerId);
  // The keepalive is sized to the measured mapping lifetime: each change is an event.
  peer.on('keepalive', (info: KeepaliveInfo) => events.keepalive(info));
  if (peer.keepalive) events.keepalive(peer.keepalive);
  peer.on('tcp-mapping', (mapped: string) => events.tcpMapping(mapped));
  // The peer registers again on its own after a drop; a permanent refusal (another process took
  // the registration with the same key, ...) ends listen with exit 1 once no connection is served.
  let refused = false;
  peer.on('disconnected', (reason: RendezvousError, info: DisconnectInfo) => {
    events.disconnected(reason, info);
    if (info.retryInMs === null) {
      refused = true;
      wake?.();
    }
  });
  peer.on('reconnected', (info: ReconnectInfo) => events.reconnected(info));
  const reachable = Object.entries(peer.reachable).filter(([, yes]) => yes).map(([transport]) => transport.toUpperCase());
  // Human output only (info is silent with --json): tells why this side will not punch.
  if (reachable.length) events.info(`directly reachable over ${reachable.join(' and ')}: peers will dial this one (connection reversal)`);
  peer.on('connection', (c: Connection) => { queue.push(c); wake?.(); });
  for (;;) {
    while (queue.length === 0 && !refused && !failed && !signal.aborted) await new Promise<void>((resolve) => { wake = resolve; });
    if (signal.aborted) throw signal.reason;
    if (queue.length === 0) return 1;
    const connection = queue.shift()!;
    events.connected(connection);
    const failure = await serveConnection(events, connection, signal, progress);
    if (failure !== undefined && (signal.aborted || once)) throw new Reported(failure);
    if (once) return 0;
  }
}

/** NATPUNCH_KEEPALIVE_MS pins the UDP keepalive interval (no sizing to the mapping lifetime). */
function pinnedKeepaliveMs(): number | undefined {
  const text = process.env['NATPUNCH_KEEPALIVE_MS'];
  if (text === undefined || text === '') return undefined;
  const ms = Number(text);
  if (!Number.isInteger(ms) || ms < 0) throw new UsageError(`NATPUNCH_KEEPALIVE_MS: ${JSON.stringify(text)}, expected a whole number of milliseconds (0 disables keepalives)`);
  return ms;
}
