import { UsageError } from '../errors.js';
import { NatpunchServer } from '../server/natpunch-server.js';
import { formatAddress } from '../wire/index.js';
import { parseArgs } from 'node:util';
import { isIP } from 'node:net';
import { readFile } from 'node:fs/promises';
import { usageErrors, integer } from './args.js';
import { type RelayConfig, parseRelayUrl, parseTurnUsers } from '../server/relay-config.js';
import { PeerAddressPolicy } from '../turn/peer-policy.js';
import { createLogger, isLogLevel } from './log.js';

export const serveUsage = `natpunch serve [--address IP]... [--alt-address IP] [--port 3478] [--alt-port 3479]
               [--http-port 8080] [--stun-tcp-idle-timeout MS] [--no-relay] [--redis URL] [--log-level info]
               [--turn-user USER:PASSWORD]... [--turn-secret SECRET] [--relay turn:HOST[:PORT]]...
               [--relay-allow CIDR]... [--relay-deny CIDR]... [--relay-address IP] [--relay-bandwidth BYTES/S]
               [--relay-user-quota 10] [--relay-total-quota 2000] [--tls-cert FILE --tls-key FILE] [--tls-port 5349]
  --address IP     where STUN, TURN and the rendezvous listen (default 0.0.0.0). Given again (e.g.
                   --address 198.51.100.10 --address 2001:db8:100::10), each further address serves
                   STUN (without RFC 5780), TURN and the rendezvous on the same ports, one registry:
                   peers reach it over IPv4 and IPv6. --alt-address and TLS go with the first.`;

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = usageErrors('serve', () => parseArgs({ args: argv, strict: true, options: {
    address: { type: 'string', multiple: true, default: ['0.0.0.0'] },
    'alt-address': { type: 'string' },
    port: { type: 'string' },
    'alt-port': { type: 'string' },
    'http-port': { type: 'string' },
    'stun-tcp-idle-timeout': { type: 'string' },
    'no-relay': { type: 'boolean', default: false },
    'turn-user': { type: 'string', multiple: true },
    'turn-secret': { type: 'string' },
    relay: { type: 'string', multiple: true },
    'relay-allow': { type: 'string', multiple: true },
    'relay-deny': { type: 'string', multiple: true },
    'relay-address': { type: 'string' },
    'relay-bandwidth': { type: 'string' },
    'relay-user-quota': { type: 'string' },
    'relay-total-quota': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'tls-port': { type: 'string' },
    redis: { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
  } }));
  const level = values['log-level']!;
  if (!isLogLevel(level)) throw new UsageError(`natpunch serve: --log-level ${level}: expected error, warn, info or debug`);
  const log = createLogger('serve', level);
  const port = integer('serve', 'port', values.port, 3478);
  const altPort = integer('serve', 'alt-port', values['alt-port'], 3479);
  if (values['alt-address'] && altPort === port && port !== 0) throw new UsageError('natpunch serve: --alt-port must differ from --port (RFC 5780 needs two ports)');
  const [address, ...extraAddresses] = values.address!;
  if (new Set(values.address).size !== values.address!.length) throw new UsageError(`natpunch serve: --address ${values.address!.join(', ')}: each address once`);
  if (values['alt-address'] === address) throw new UsageError('natpunch serve: --alt-address must differ from --address (RFC 5780 needs two IPs)');

  const httpPort = integer('serve', 'http-port', values['http-port'], 8080);
  // Closing idle STUN/TCP connections early stands in for servers and middleboxes that do (peers then learn TCP mappings from short connections).
  const stunTcpIdleTimeoutMs = integer('serve', 'stun-tcp-idle-timeout', values['stun-tcp-idle-timeout'], 30_000, 1, 3_600_000);
  if (values.redis) log.warn('--redis: the Redis registry is not implemented yet; using in-memory state');
  const relay = relayConfig(values);
  const tls = await tlsFiles(values['tls-cert'], values['tls-key'], integer('serve', 'tls-port', values['tls-port'], 5349));
  const server = await NatpunchServer.listen({ address: address!, extraAddresses, port, altAddress: values['alt-address'], altPort, httpPort, stunTcpIdleTimeoutMs, relay, ...(tls ? { tls } : {}) });
  const stun = server.stun;
  const shutdown = async (signal: string): Promise<void> => {
    log.info(`${signal}: shutting down`);
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  const where = [...stun.addresses, ...server.extraStun.map((s) => s.addresses[0]!)].map(formatAddress).join(' ');
  const tlsWhere = stun.tlsAddress ? `; STUN/TURN over TLS ${formatAddress(stun.tlsAddress)}` : '';
  const relayWhat = server.turn ? `; TURN relay on the STUN ports, relaying from ${server.turn.relayAddress}` : '; no built-in relay';
  const external = relay.external?.length ? `; peers also offered ${relay.external.join(' ')}` : '';
  log.info(`ready: STUN on udp+tcp ${where}${values['alt-address'] ? ' (RFC 5780 behaviour discovery on)' : ''}${tlsWhere}${relayWhat}${external}; rendezvous ${[server.rendezvousUrl, ...server.extraRendezvousUrls].join(' ')}`);
  await new Promise(() => undefined);
  return 0;
}

type ServeValues = { [name: string]: string | boolean | string[] | undefined };

function relayConfig(values: ServeValues): RelayConfig {
  const list = (name: string): string[] => (values[name] as string[] | undefined) ?? [];
  const secret = values['turn-secret'] as string | undefined;
  if (secret !== undefined && secret.length < 8) throw new UsageError('natpunch serve: --turn-secret is shorter than 8 characters; use a long random string (e.g. openssl rand -base64 24)');
  const external = list('relay').map(parseRelayUrl);
  if (external.length > 0 && secret === undefined) throw new UsageError('natpunch serve: --relay needs --turn-secret, the REST secret the external TURN server shares (coturn: --use-auth-secret --static-auth-secret SECRET)');
  const relayAddress = values['relay-address'] as string | undefined;
  if (relayAddress !== undefined && !isIP(relayAddress)) throw new UsageError(`natpunch serve: --relay-address ${JSON.stringify(relayAddress)} is not an IP address`);
  // Parse the address lists now: a typo is a usage error, not a failure after the ports are open.
  try {
    new PeerAddressPolicy({ allow: list('relay-allow'), deny: list('relay-deny') });
  } catch (error) {
    throw new UsageError(`natpunch serve: ${(error as Error).message}`);
  }
  return {
    builtIn: values['no-relay'] !== true,
    users: parseTurnUsers(list('turn-user')),
    ...(secret !== undefined ? { secret } : {}),
    external,
    allow: list('relay-allow'),
    deny: list('relay-deny'),
    ...(relayAddress !== undefined ? { relayAddress } : {}),
    bandwidth: integer('serve', 'relay-bandwidth', values['relay-bandwidth'] as string | undefined, 0, 0, 10_000_000_000),
    userQuota: integer('serve', 'relay-user-quota', values['relay-user-quota'] as string | undefined, 10, 1, 1_000_000),
    totalQuota: integer('serve', 'relay-total-quota', values['relay-total-quota'] as string | undefined, 2000, 1, 1_000_000),
  };
}

async function tlsFiles(cert: string | undefined, key: string | undefined, port: number): Promise<{ cert: Buffer; key: Buffer; port: number } | undefined> {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) throw new UsageError('natpunch serve: --tls-cert and --tls-key go together (a PEM certificate chain and its private key)');
  const read = async (option: string, file: string): Promise<Buffer> => {
    try {
      return await readFile(file);
    } catch (error) {
      throw new UsageError(`natpunch serve: --${option} ${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
    }
  };
  return { cert: await read('tls-cert', cert), key: await read('tls-key', key), port };
}
