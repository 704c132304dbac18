import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { finished as streamFinished } from 'node:stream/promises';
import { UsageError } from '../errors.js';
import type { Connection, Peer } from '../peer/peer.js';
import type { RendezvousError } from '../rendezvous/errors.js';
import type { DisconnectInfo, ReconnectInfo } from '../rendezvous/reconnecting-client.js';
import { receiveFiles, type Entry } from '../transfer/index.js';
import { type CommandSpec, jsonFlag, keyFlag, parseCommand, serverFlag, usageLine, usageText } from './args.js';
import { allowFileFlag, allowFlag, allowList, bindAddress, bindFlag, checkServer, noReportFlag, startPeer } from './peer-flags.js';
import { eventSink, type EventSink } from './events.js';
import { interrupts } from './interrupts.js';
import { formatBytes, TransferDisplay } from './transfer-display.js';

export const receiveSpec: CommandSpec = {
  name: 'receive',
  summary: 'Register at the rendezvous server and receive files from peers running natpunch send, into DIR. Each file\n'
    + 'is written under a temporary name and takes its own only when complete and verified (SHA-256).',
  flags: {
    server: serverFlag,
    key: keyFlag,
    out: { type: 'string', value: 'DIR', defaultText: 'the current directory', help: 'where files land (it must exist); a name already there is refused, never overwritten', example: '--out ~/Downloads' },
    once: { type: 'boolean', help: 'receive one transfer, then exit: 0 when it completed, 1 when it failed', example: '--once' },
    allow: allowFlag,
    'allow-file': allowFileFlag,
    bind: bindFlag,
    'no-report': noReportFlag,
    json: jsonFlag,
  },
  notes: [
    'Transfers from several peers run side by side. An interrupted transfer leaves .NAME.natpunch-partial files;',
    'the same sender sending again resumes from them.',
  ],
  examples: ['natpunch receive --server ws://203.0.113.7:8080/ --out ~/Downloads --allow-file ~/.natpunch/allowed'],
};

export const receiveUsage = usageLine(receiveSpec);

/**
 * Accept files from peers into DIR. Transfers from different peers run side by side (one name
 * is written by one of them at a time: the other is refused as busy); a new connection from a
 * peer whose earlier transfer is still open replaces it — the sender was restarted, its old
 * connection is dead and only waiting to time out — so sending again resumes at once.
 */
export async function receiveCommand(argv: string[]): Promise<number> {
  const { values: parsed } = parseCommand(receiveSpec, argv);
  const values = parsed as { server?: string; key?: string; out?: string; once?: boolean; allow?: string[]; 'allow-file'?: string; bind?: string; 'no-report'?: boolean; json?: boolean };
  const server = checkServer('receive', values.server, usageText(receiveSpec));
  const allow = await allowList('receive', values.allow, values['allow-file']);
  const bind = bindAddress('receive', values.bind);
  const directory = resolve(values.out ?? '.');
  const isDirectory = await stat(directory).then((s) => s.isDirectory(), () => false);
  if (!isDirectory) throw new UsageError(`natpunch receive: --out ${directory} is not a directory; create it first`);
  const json = values.json === true;
  const events = eventSink(json);
  const interrupt = interrupts();
  const peer = await startPeer({ server, keyFile: values.key, bindAddress: bind, report: values['no-report'] !== true, ...(allow ? { allow } : {}), signal: interrupt.signal }).catch((error: unknown) => {
    interrupt.dispose();
    throw error;
  });
  const inProgress = new Set<string>();
  /** Each peer's open transfer: a newer connection from the same peer replaces it. */
  const current = new Map<string, { connection: Connection; ended: Promise<unknown> }>();
  let finish: ((code: number) => void) | undefined;
  const finished = new Promise<number>((resolve) => { finish = resolve; });

  const serve = async (connection: Connection): Promise<void> => {
    const from = connection.remotePeerId;
    const earlier = current.get(from);
    if (earlier) {
      earlier.connection.destroy();
      await earlier.ended;
    }
    const display = new TransferDisplay({ json, tty: !json && process.stderr.isTTY === true });
    display.attach(connection);
    events.connected(connection);
    try {
      const summary = await receiveFiles(connection, {
        directory, signal: interrupt.signal, inProgress,
        onOffer: (entries) => events.info(describeOffer(from, entries)),
        onProgress: (p) => display.progress(p),
        onCheck: (path, bytes) => display.checking(path, bytes, 'kept from an earlier run'),
      });
      await streamFinished(connection);
      display.done(summary, 'received', `from ${from} into ${directory}`, { peer: from, out: directory });
      if (values.once) finish!(0);
    } catch (error) {
      display.clear();
      events.error(error);
      if (values.once) finish!(interrupt.exitCode ?? 1);
    }
  };

  peer.on('connection', (connection: Connection) => {
    const ended = serve(connection);
    const entry = { connection, ended };
    current.set(connection.remotePeerId, entry);
    void ended.finally(() => { if (current.get(connection.remotePeerId) === entry) current.delete(connection.remotePeerId); });
  });
  peer.on('connection-error', (error: Error) => events.error(error));
  followRendezvous(peer, events, () => finish!(1));
  if (json) events.ready(peer.peerId);
  else events.info(`receiving into ${directory} as ${peer.peerId}\n  (on the other machine: natpunch send ${peer.peerId} FILE... --server URL)`);
  const onInterrupt = (): void => {
    // In-flight transfers end with 'aborted' (their senders are told); then we go, with the
    // shell's code for the signal (130, 143), as listen and connect exit.
    const inFlight = [...current.values()].map((c) => c.ended);
    // Idle, nothing else would say why we go (a transfer under way reports its own abort).
    if (inFlight.length === 0) events.error(interrupt.signal.reason);
    void Promise.allSettled(inFlight).then(() => finish!(interrupt.exitCode ?? 1));
  };
  if (interrupt.signal.aborted) onInterrupt();
  else interrupt.signal.addEventListener('abort', onInterrupt, { once: true });
  try {
    return await finished;
  } finally {
    interrupt.dispose();
    await peer.close();
  }
}

function describeOffer(from: string, entries: readonly Entry[]): string {
  const files = entries.filter((e) => e.kind === 'file');
  const bytes = files.reduce((sum, f) => sum + f.size, 0);
  const names = entries.filter((e) => !e.path.includes('/')).map((e) => e.path);
  const shown = names.slice(0, 3).join(', ') + (names.length > 3 ? `, and ${names.length - 3} more` : '');
  return `${from} sends ${files.length} file${files.length === 1 ? '' : 's'} (${formatBytes(bytes)}): ${shown}`;
}

/** Registration changes as listen reports them; a permanent refusal ends receive (exit 1). */
function followRendezvous(peer: Peer, events: EventSink, refused: () => void): void {
  peer.on('disconnected', (reason: RendezvousError, info: DisconnectInfo) => {
    events.disconnected(reason, info);
    if (info.retryInMs === null) refused();
  });
  peer.on('reconnected', (info: ReconnectInfo) => events.reconnected(info));
}
