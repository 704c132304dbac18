import { UsageError } from '../errors.js';
import { isPeerId } from '../identity/index.js';
import { type CommandSpec, type Flag, jsonFlag, keyFlag, parseCommand, serverFlag, usageLine, usageText } from './args.js';
import { eventSink } from './events.js';
import { Reported, bindAddress, bindFlag, checkServer, noReportFlag, portMappingFlag, progressFlag, progressForm, serveConnection, withPeer } from './peer-flags.js';

const transports = ['auto', 'udp', 'tcp', 'relay'] as const;

/** `--transport`: which techniques may carry the connection (connect, forward). */
export const transportFlag: Flag = {
  type: 'string', value: 'auto|udp|tcp|relay', default: 'auto',
  help: 'how to reach the peer: auto races UDP and TCP hole punching and falls back to the relay; udp, tcp or relay forces one',
  example: '--transport tcp',
};

export const connectSpec: CommandSpec = {
  name: 'connect',
  positionals: 'PEER_ID',
  summary: 'Connect to a peer by its id (the other side runs natpunch listen) and pipe stdin/stdout to it, end-to-end encrypted.\n'
    + 'stdin EOF half-closes; exit 0 once both directions have ended.',
  flags: {
    server: serverFlag,
    key: keyFlag,
    transport: transportFlag,
    'port-mapping': portMappingFlag,
    bind: bindFlag,
    progress: progressFlag,
    'no-report': noReportFlag,
    json: jsonFlag,
  },
  notes: [
    'Ctrl-C (or SIGTERM) aborts the connection: the other side stops at once with ERR_PEER_ABORTED,',
    'and this side exits 130 (143 for SIGTERM). When the connection ends, a summary (bytes each way,',
    'path, duration) goes to stderr, or {"event":"closed",...} with --json.',
  ],
  examples: [
    'echo hello | natpunch connect PEER_ID --server ws://203.0.113.7:8080/',
    'natpunch connect PEER_ID --server ws://203.0.113.7:8080/ --json < file > reply',
  ],
};

export const connectUsage = usageLine(connectSpec);

export async function connectCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(connectSpec, argv);
  const [peerId, ...extra] = positionals;
  if (!peerId || extra.length) throw new UsageError(`natpunch connect: give exactly one PEER_ID (the other side prints it with 'natpunch listen' or 'natpunch id').\n${usageText(connectSpec)}`);
  if (!isPeerId(peerId)) throw new UsageError(`natpunch connect: ${JSON.stringify(peerId)} is not a peer id (check for a typo: ids carry a checksum)`);
  const server = checkServer('connect', values['server'] as string | undefined, usageText(connectSpec));
  const transport = values['transport'] as (typeof transports)[number];
  if (!transports.includes(transport)) throw new UsageError(`natpunch connect: --transport ${JSON.stringify(transport)}: expected auto, udp, tcp or relay`);
  const bind = bindAddress('connect', values['bind'] as string | undefined);
  const events = eventSink(values['json'] === true);
  return withPeer(events, { server, keyFile: values['key'] as string | undefined, bindAddress: bind, portMapping: values['port-mapping'] === true, report: values['no-report'] !== true }, async (peer, signal) => {
    const connection = await peer.connect(peerId, { transport, signal });
    events.connected(connection);
    const failure = await serveConnection(events, connection, signal, progressForm(values['progress'], values['json'] === true));
    if (failure !== undefined) throw new Reported(failure);
    return 0;
  });
}
