import { finished } from 'node:stream/promises';
import { UsageError } from '../errors.js';
import { isPeerId } from '../identity/index.js';
import { collectEntries, encodeOffer, sendFiles, type LocalEntries } from '../transfer/index.js';
import { type CommandSpec, jsonFlag, keyFlag, parseCommand, serverFlag, usageLine, usageText } from './args.js';
import { bindAddress, bindFlag, checkServer, noReportFlag, startPeer } from './peer-flags.js';
import { eventSink } from './events.js';
import { interrupts } from './interrupts.js';
import { TransferDisplay } from './transfer-display.js';

export const sendSpec: CommandSpec = {
  name: 'send',
  positionals: 'PEER_ID FILE...',
  summary: 'Send files and directories to a peer running natpunch receive, end-to-end encrypted, direct whenever\n'
    + 'the NATs allow. Each file is verified (SHA-256) on arrival; sending again after an interruption sends only the rest.',
  flags: {
    server: serverFlag,
    key: keyFlag,
    'limit-rate': {
      type: 'string', value: 'BYTES/S', defaultText: 'no limit',
      help: 'send at most this many bytes per second (K, M, G: powers of 1024, as curl\'s --limit-rate)', example: '--limit-rate 16M',
    },
    bind: bindFlag,
    'no-report': noReportFlag,
    json: jsonFlag,
  },
  notes: [
    'Progress: a bar on a terminal; with --json, {"event":"progress","bytes":N,"total":N,...} lines (at most 4 a second),',
    'then {"event":"done",...}. Ctrl-C aborts: the receiver keeps what arrived and the next send resumes from there.',
  ],
  examples: ['natpunch send ah4ytbnkeoro34qprv2gqnc5vebpxztoiyafb4bpvnjm4uqycouu6bdq photos/ notes.txt --server ws://203.0.113.7:8080/'],
};

export const sendUsage = usageLine(sendSpec);

export async function sendCommand(argv: string[]): Promise<number> {
  const { values: parsed, positionals } = parseCommand(sendSpec, argv);
  const values = parsed as { server?: string; key?: string; 'limit-rate'?: string; bind?: string; 'no-report'?: boolean; json?: boolean };
  const [peerId, ...paths] = positionals;
  if (!peerId || paths.length === 0) throw new UsageError(`natpunch send: give the receiver's PEER_ID (it prints it: 'natpunch receive') and at least one FILE or directory.\n${usageText(sendSpec)}`);
  if (!isPeerId(peerId)) throw new UsageError(`natpunch send: ${JSON.stringify(peerId)} is not a peer id (check for a typo: ids carry a checksum)`);
  const server = checkServer('send', values.server, usageText(sendSpec));
  const bind = bindAddress('send', values.bind);
  const rateLimit = values['limit-rate'] === undefined ? undefined : parseRate(values['limit-rate']);
  let local: LocalEntries;
  try {
    local = await collectEntries(paths);
    encodeOffer(local.entries); // too many files for one offer: said now, not after connecting
  } catch (error) {
    throw new UsageError(`natpunch send: ${(error as Error).message}`);
  }
  const events = eventSink(values.json === true);
  for (const path of local.skipped) events.info(`skipping ${path}: not a regular file or directory (links inside directories are not followed)`);
  const display = new TransferDisplay({ json: values.json === true, tty: values.json !== true && process.stderr.isTTY === true });
  const interrupt = interrupts();
  const peer = await startPeer({ server, keyFile: values.key, bindAddress: bind, report: values['no-report'] !== true, signal: interrupt.signal }).catch((error: unknown) => {
    interrupt.dispose();
    throw error;
  });
  try {
    const connection = await peer.connect(peerId, { signal: interrupt.signal });
    display.attach(connection);
    events.connected(connection);
    const summary = await sendFiles(connection, local.entries, { signal: interrupt.signal, rateLimit, onProgress: (p) => display.progress(p), onCheck: (path, bytes) => display.checking(path, bytes, 'the receiver already has') });
    // Both sides have ended; wait for our end to be acknowledged before the peer closes its socket.
    await finished(connection);
    display.done(summary, 'sent', `to ${peerId}`, { peer: peerId });
    return 0;
  } catch (error) {
    display.clear();
    events.error(error);
    // Interrupted: the shell's code for the signal (130, 143), as listen and connect exit.
    return interrupt.exitCode ?? 1;
  } finally {
    interrupt.dispose();
    await peer.close();
  }
}

/** "500000", "800K", "16M", "1G" (powers of 1024, as curl's --limit-rate). */
function parseRate(text: string): number {
  const match = /^(\d+(?:\.\d+)?)([kKmMgG]?)$/.exec(text);
  const value = match ? Number(match[1]) * 1024 ** ' kmg'.indexOf((match[2] || ' ').toLowerCase()) : NaN;
  if (!(value >= 1024)) throw new UsageError(`natpunch send: --limit-rate ${JSON.stringify(text)}: expected bytes per second of at least 1K, e.g. 500K or 16M`);
  return value;
}


