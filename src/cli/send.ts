import { finished } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { UsageError } from '../errors.js';
import { createPeer } from '../peer/peer.js';
import { isPeerId } from '../identity/index.js';
import { collectEntries, encodeOffer, sendFiles, type LocalEntries } from '../transfer/index.js';
import { usageErrors } from './args.js';
import { eventSink } from './events.js';
import { interruptSignal } from './interrupt.js';
import { TransferDisplay } from './transfer-display.js';

export const sendUsage = 'natpunch send PEER_ID FILE... --server URL [--key FILE] [--limit-rate BYTES/S] [--json]';

export async function sendCommand(argv: string[]): Promise<number> {
  const { values, positionals } = usageErrors('send', () => parseArgs({ args: argv, strict: true, allowPositionals: true, options: {
    server: { type: 'string' }, key: { type: 'string' }, 'limit-rate': { type: 'string' }, json: { type: 'boolean', default: false },
  } }));
  const [peerId, ...paths] = positionals;
  if (!peerId || paths.length === 0) throw new UsageError(`natpunch send: give the receiver's PEER_ID (it prints it: 'natpunch receive') and at least one FILE or directory.\nusage: ${sendUsage}`);
  if (!isPeerId(peerId)) throw new UsageError(`natpunch send: ${JSON.stringify(peerId)} is not a peer id (check for a typo: ids carry a checksum)`);
  if (!values.server) throw new UsageError(`natpunch send: --server URL is required (the rendezvous server, e.g. ws://HOST:8080/).\nusage: ${sendUsage}`);
  const rateLimit = values['limit-rate'] === undefined ? undefined : parseRate(values['limit-rate']);
  let local: LocalEntries;
  try {
    local = await collectEntries(paths);
    encodeOffer(local.entries); // too many files for one offer: said now, not after connecting
  } catch (error) {
    throw new UsageError(`natpunch send: ${(error as Error).message}`);
  }
  const events = eventSink(values.json!);
  for (const path of local.skipped) events.info(`skipping ${path}: not a regular file or directory (links inside directories are not followed)`);
  const display = new TransferDisplay({ json: values.json!, tty: !values.json && process.stderr.isTTY === true });
  const interrupt = interruptSignal();
  const peer = await createPeer({ server: values.server, keyFile: values.key, signal: interrupt.signal }).catch((error: unknown) => {
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
    return 1;
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


