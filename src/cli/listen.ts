import { parseArgs } from 'node:util';
import { UsageError, type PortMapError } from '../errors.js';
import type { PortMappingInfo } from '../portmap/index.js';
import { createPeer, type Connection, type KeepaliveInfo } from '../peer/peer.js';
import type { RendezvousError } from '../rendezvous/errors.js';
import type { DisconnectInfo, ReconnectInfo } from '../rendezvous/reconnecting-client.js';
import { usageErrors } from './args.js';
import { eventSink, pipeStdio } from './events.js';

export const listenUsage = 'natpunch listen --server URL [--key FILE] [--once] [--port-mapping] [--json]';

export async function listenCommand(argv: string[]): Promise<number> {
  const { values } = usageErrors('listen', () => parseArgs({ args: argv, strict: true, options: {
    server: { type: 'string' }, key: { type: 'string' }, once: { type: 'boolean', default: false }, 'port-mapping': { type: 'boolean', default: false }, json: { type: 'boolean', default: false },
  } }));
  if (!values.server) throw new UsageError(`natpunch listen: --server URL is required (the rendezvous server, e.g. ws://HOST:8080/).\nusage: ${listenUsage}`);
  const events = eventSink(values.json!);
  // Connections are served one at a time: stdin/stdout can belong to only one of them.
  const queue: Connection[] = [];
  let wake: (() => void) | undefined;
  const peer = await createPeer({ server: values.server, keyFile: values.key, keepaliveMs: pinnedKeepaliveMs(), portMapping: values['port-mapping']! });
  peer.on('connection-error', (error: Error) => events.error(error));
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
  try {
    for (;;) {
      while (queue.length === 0 && !refused) await new Promise<void>((resolve) => { wake = resolve; });
      if (queue.length === 0) return 1;
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

/** NATPUNCH_KEEPALIVE_MS pins the UDP keepalive interval (no sizing to the mapping lifetime). */
function pinnedKeepaliveMs(): number | undefined {
  const text = process.env['NATPUNCH_KEEPALIVE_MS'];
  if (text === undefined || text === '') return undefined;
  const ms = Number(text);
  if (!Number.isInteger(ms) || ms < 0) throw new UsageError(`NATPUNCH_KEEPALIVE_MS: ${JSON.stringify(text)}, expected a whole number of milliseconds (0 disables keepalives)`);
  return ms;
}
