import { isIP } from 'node:net';
import { UsageError } from '../errors.js';
import { isPeerId, loadOrCreateIdentity, defaultKeyFile } from '../identity/index.js';
import { SERVERLESS_PUNCH_TIMEOUT_MS, type ServerlessConnection, punchServerless } from '../peer/serverless.js';
import { type CommandSpec, integer, jsonFlag, keyFlag, parseCommand, usageLine, usageText } from './args.js';
import { eventSink } from './events.js';
import { Reported, serveConnection } from './peer-flags.js';
import { interrupts } from './interrupts.js';
import { exitCodeFor } from './report-error.js';

/** Overrides the punching budget, ms (tests; documented in docs/decisions/013-serverless-punch.md). */
const TIMEOUT_ENV = 'NATPUNCH_PUNCH_TIMEOUT_MS';

export const punchSpec: CommandSpec = {
  name: 'punch',
  summary: 'Connect to a peer without a rendezvous server, when both sides know each other\'s public endpoint\n'
    + '(natpunch check --stun SERVER --local-port P prints it). Both sides run natpunch punch, each with the other\'s\n'
    + 'endpoint; then stdin/stdout are piped to the peer, end-to-end encrypted. stdin EOF half-closes; exit 0 once both\n'
    + 'directions have ended.',
  flags: {
    'local-port': {
      type: 'string', value: 'P', required: true,
      help: 'the UDP port to punch from: the one whose public mapping the other side was given', example: '--local-port 40000',
    },
    peer: {
      type: 'string', value: 'IP:PORT', required: true,
      help: 'the other side\'s public endpoint (the only address natpunch punch sends to)', example: '--peer 203.0.113.9:40000',
    },
    key: keyFlag,
    'peer-id': {
      type: 'string', value: 'ID', defaultText: 'none: encrypted, but any peer is accepted and its id printed for you to check',
      help: 'the other side\'s peer id (natpunch id prints it): anyone else is refused (ERR_NOISE)',
      example: '--peer-id ah4ytbnkeoro34qprv2gqnc5vebpxztoiyafb4bpvnjm4uqycouu6bdq',
    },
    json: jsonFlag,
  },
  notes: [
    `Punching gives up after ${SERVERLESS_PUNCH_TIMEOUT_MS / 1000} s with no answer (exit 1, ERR_UNREACHABLE): start the other side within that time.`,
    'Both NATs must map the port the same way toward every destination (endpoint-independent mapping, most home',
    'routers): natpunch check tells. Ctrl-C (or SIGTERM) aborts the connection; exit 130 (143).',
  ],
  examples: [
    'natpunch punch --local-port 40000 --peer 203.0.113.9:40001 --peer-id PEER_ID < file',
    'natpunch punch --local-port 40001 --peer 198.51.100.4:40000 --json > file',
  ],
};

export const punchUsage = usageLine(punchSpec);

/** --peer: an IPv4 literal and a port (no DNS: the address is the one the other side saw mapped). */
function parsePeer(text: string): { family: 4; address: string; port: number } {
  const match = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || isIP(match[1]!) !== 4 || port < 1 || port > 65535) {
    throw new UsageError(`natpunch punch: --peer ${JSON.stringify(text)}: expected IP:PORT, an IPv4 address and a port from 1 to 65535 (e.g. 203.0.113.9:40000)`);
  }
  return { family: 4, address: match[1]!, port };
}

export async function punchCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(punchSpec, argv);
  if (positionals.length) throw new UsageError(`natpunch punch: unexpected argument ${JSON.stringify(positionals[0])}.\n${usageText(punchSpec)}`);
  const portText = values['local-port'] as string | undefined;
  const peerText = values['peer'] as string | undefined;
  if (portText === undefined || peerText === undefined) {
    throw new UsageError(`natpunch punch: --local-port P and --peer IP:PORT are both required.\n${usageText(punchSpec)}`);
  }
  const localPort = integer('punch', 'local-port', portText, 0, 1, 65535);
  const remote = parsePeer(peerText);
  const peerId = values['peer-id'] as string | undefined;
  if (peerId !== undefined && !isPeerId(peerId)) throw new UsageError(`natpunch punch: --peer-id ${JSON.stringify(peerId)} is not a peer id (check for a typo: ids carry a checksum)`);
  const timeoutMs = integer('punch', TIMEOUT_ENV, process.env[TIMEOUT_ENV], SERVERLESS_PUNCH_TIMEOUT_MS, 100, 3_600_000);
  const events = eventSink(values['json'] === true);
  const stop = interrupts();
  let punched: ServerlessConnection | undefined;
  try {
    const identity = await loadOrCreateIdentity((values['key'] as string | undefined) ?? defaultKeyFile());
    punched = await punchServerless({
      identity, localPort, remote, peerId, timeoutMs, signal: stop.signal,
      onBound: () => events.ready(identity.peerId, {
        fields: { localPort, peer: peerText },
        text: `this side is ${identity.peerId}; punching from UDP port ${localPort} to ${peerText} (up to ${Math.round(timeoutMs / 1000)} s)`,
      }),
    });
    const { connection } = punched;
    events.connected(connection);
    if (!punched.authenticated) {
      // Like ssh's first-use fingerprint: encrypted, but only the user can tell whether this is the right peer.
      events.info(`WARNING: the peer was not authenticated (no --peer-id). It proved to hold the id\n    ${connection.remotePeerId}\n`
        + `  Check it with the other side (natpunch id there); next time pass --peer-id ${connection.remotePeerId}`);
    }
    const failure = await serveConnection(events, connection, stop.signal);
    if (failure !== undefined) throw new Reported(failure);
    return 0;
  } catch (error) {
    if (!(error instanceof Reported)) events.error(stop.exitCode !== undefined ? stop.signal.reason : error);
    return stop.exitCode ?? exitCodeFor(error instanceof Reported ? error.error : error);
  } finally {
    await punched?.close();
    stop.dispose();
    process.stdin.destroy();
  }
}
