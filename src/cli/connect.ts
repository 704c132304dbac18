import { parseArgs } from 'node:util';
import { UsageError } from '../errors.js';
import { createPeer } from '../peer/peer.js';
import { isPeerId } from '../identity/index.js';
import { usageErrors } from './args.js';
import { eventSink, pipeStdio } from './events.js';

export const connectUsage = 'natpunch connect PEER_ID --server URL [--key FILE] [--transport auto|udp|tcp|relay] [--port-mapping] [--json]';
const transports = ['auto', 'udp', 'tcp', 'relay'] as const;

export async function connectCommand(argv: string[]): Promise<number> {
  const { values, positionals } = usageErrors('connect', () => parseArgs({ args: argv, strict: true, allowPositionals: true, options: {
    server: { type: 'string' }, key: { type: 'string' }, transport: { type: 'string', default: 'auto' }, 'port-mapping': { type: 'boolean', default: false }, json: { type: 'boolean', default: false },
  } }));
  const [peerId, ...extra] = positionals;
  if (!peerId || extra.length) throw new UsageError(`natpunch connect: give exactly one PEER_ID (the other side prints it with 'natpunch listen' or 'natpunch id').\nusage: ${connectUsage}`);
  if (!isPeerId(peerId)) throw new UsageError(`natpunch connect: ${JSON.stringify(peerId)} is not a peer id (check for a typo: ids carry a checksum)`);
  if (!values.server) throw new UsageError(`natpunch connect: --server URL is required (the rendezvous server, e.g. ws://HOST:8080/).\nusage: ${connectUsage}`);
  const transport = values.transport as (typeof transports)[number];
  if (!transports.includes(transport)) throw new UsageError(`natpunch connect: --transport ${values.transport}: expected auto, udp, tcp or relay`);
  const events = eventSink(values.json!);
  const peer = await createPeer({ server: values.server, keyFile: values.key, portMapping: values['port-mapping']! });
  try {
    const connection = await peer.connect(peerId, { transport });
    events.connected(connection);
    await pipeStdio(connection);
    return 0;
  } catch (error) {
    events.error(error);
    return 1;
  } finally {
    await peer.close();
    process.stdin.destroy();
  }
}
