import { parseArgs } from 'node:util';
import { UsageError } from '../errors.js';
import { createPeer, type Connection } from '../peer/peer.js';
import { usageErrors } from './args.js';
import { eventSink, pipeStdio } from './events.js';

export const listenUsage = 'natpunch listen --server URL [--key FILE] [--once] [--json]';

export async function listenCommand(argv: string[]): Promise<number> {
  const { values } = usageErrors('listen', () => parseArgs({ args: argv, strict: true, options: {
    server: { type: 'string' }, key: { type: 'string' }, once: { type: 'boolean', default: false }, json: { type: 'boolean', default: false },
  } }));
  if (!values.server) throw new UsageError(`natpunch listen: --server URL is required (the rendezvous server, e.g. ws://HOST:8080/).\nusage: ${listenUsage}`);
  const events = eventSink(values.json!);
  const peer = await createPeer({ server: values.server, keyFile: values.key });
  peer.on('connection-error', (error: Error) => events.error(error));
  events.ready(peer.peerId);
  const reachable = Object.entries(peer.reachable).filter(([, yes]) => yes).map(([transport]) => transport.toUpperCase());
  // Human output only (info is silent with --json): tells why this side will not punch.
  if (reachable.length) events.info(`directly reachable over ${reachable.join(' and ')}: peers will dial this one (connection reversal)`);
  // Connections are served one at a time: stdin/stdout can belong to only one of them.
  const queue: Connection[] = [];
  let wake: (() => void) | undefined;
  peer.on('connection', (c: Connection) => { queue.push(c); wake?.(); });
  try {
    for (;;) {
      while (queue.length === 0) await new Promise<void>((resolve) => { wake = resolve; });
      const connection = queue.shift()!;
      events.connected(connection);
      try {
        await pipeStdio(connection);
      } catch (error) {
        events.error(error);
        if (values.once) return 1;
      }
      if (values.once) return 0;
    }
  } finally {
    await peer.close();
    process.stdin.destroy();
  }
}
