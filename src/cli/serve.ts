import { UsageError } from '../errors.js';
import { formatAddress } from '../wire/index.js';
import { isIP } from 'node:net';
import { readFile } from 'node:fs/promises';
import { type CommandSpec, type Flag, integer, parseCommand, usageLine } from './args.js';
import { listenFailure } from './listen-failure.js';
import { type RelayConfig, parseRelayUrl, parseTurnUsers } from '../server/relay-config.js';
import { PeerAddressPolicy } from '../turn/peer-policy.js';
import { createLogger, isLogLevel } from './log.js';
import { redactUrl } from '../rendezvous/redis-client.js';

const stunPort = (help: string, fallback: string, example: string): Flag => ({ type: 'string', value: 'PORT', default: fallback, help, example });

export const serveSpec: CommandSpec = {
  name: 'serve',
  summary: 'Run the servers peers meet at: STUN (RFC 8489, RFC 5780 with --alt-address) on UDP and TCP, a TURN relay\n'
    + '(RFC 8656) on the same ports, and the rendezvous WebSocket with /healthz, /metrics and a dashboard over HTTP.\n'
    + 'Logs a line containing "ready" once every listener is up.',
  flags: {
    address: {
      type: 'string', value: 'IP', multiple: true, defaultText: '0.0.0.0',
      help: 'where STUN, TURN and the rendezvous listen. Given again, each further address serves STUN (without RFC 5780), TURN and the rendezvous on the same ports with one registry, so peers reach it over IPv4 and IPv6; --alt-address and TLS go with the first',
      example: '--address 198.51.100.10 --address 2001:db8:100::10',
    },
    'alt-address': { type: 'string', value: 'IP', help: 'a second address of this host: turns on RFC 5780 behaviour discovery (natpunch check needs it)', defaultText: 'none: no RFC 5780 tests', example: '--alt-address 203.0.113.8' },
    port: stunPort('STUN and TURN port, UDP and TCP (0: any free port)', '3478', '--port 3478'),
    'alt-port': stunPort('the second STUN port for RFC 5780 (with --alt-address)', '3479', '--alt-port 3479'),
    'http-port': { type: 'string', value: 'PORT', default: '8080', help: 'rendezvous WebSocket and HTTP: GET /healthz (200 "ok" to anyone), GET /metrics (Prometheus text) and GET / (a live dashboard), the last two and /healthz\'s details for loopback clients and --metrics-token holders', example: '--http-port 80' },
    'metrics-token': { type: 'string', value: 'TOKEN', defaultText: 'none: /metrics and the dashboard for loopback clients only', help: 'let requests with "Authorization: Bearer TOKEN" read /metrics, the dashboard and /healthz\'s details from anywhere (a Prometheus scrape job\'s authorization credentials); at least 16 characters', example: '--metrics-token "$(openssl rand -hex 16)"' },
    'stun-tcp-idle-timeout': { type: 'string', value: 'MS', default: '30000', help: 'close a STUN/TCP connection idle this long, ms', example: '--stun-tcp-idle-timeout 60000' },
    'stun-tcp-max-connections': { type: 'string', value: 'N', default: '1024', help: 'STUN/TURN TCP and TLS connections at once; when full, the one longest without a whole message gives way to a new one', example: '--stun-tcp-max-connections 4096' },
    'stun-tcp-max-per-address': { type: 'string', value: 'N', default: '64', help: 'STUN/TURN TCP and TLS connections from one IP address; more are closed at once', example: '--stun-tcp-max-per-address 16' },
    'stun-tcp-frame-timeout': { type: 'string', value: 'MS', default: '10000', help: 'a STUN message over TCP must arrive whole this long after its first byte (and a TLS handshake end), ms; else the connection is closed', example: '--stun-tcp-frame-timeout 5000' },
    'stun-rate-limit': { type: 'string', value: 'N', default: '100', help: 'STUN/TURN requests over UDP answered per second per source IP, bursts of twice as many (0: no limit)', example: '--stun-rate-limit 20' },
    'http-headers-timeout': { type: 'string', value: 'MS', default: '10000', help: 'an HTTP connection (the rendezvous WebSocket too) must send its whole request head this long after connecting, ms', example: '--http-headers-timeout 5000' },
    'http-max-connections': { type: 'string', value: 'N', default: '10000', help: 'HTTP connections at once, WebSockets included; when full, the stalest that is not a WebSocket gives way (keep it below the open-file limit, ulimit -n)', example: '--http-max-connections 50000' },
    'http-max-per-address': { type: 'string', value: 'N', default: '256', help: 'HTTP connections from one IP address (peers behind one carrier-grade NAT share one)', example: '--http-max-per-address 64' },
    'no-relay': { type: 'boolean', help: 'run no TURN relay (peers that cannot connect directly then fail)', example: '--no-relay' },
    'turn-user': { type: 'string', value: 'USER:PASSWORD', multiple: true, help: 'a long-term TURN user (RFC 8656 §9.2)', example: '--turn-user alice:s3cret' },
    'turn-secret': { type: 'string', value: 'SECRET', help: 'the TURN REST secret (coturn --static-auth-secret): credentials minted for each registered peer', example: '--turn-secret "$(openssl rand -base64 24)"' },
    relay: { type: 'string', value: 'turn:HOST[:PORT]', multiple: true, help: 'offer peers an external TURN server too (needs --turn-secret)', example: '--relay turn:relay.example.net:3478' },
    'relay-allow': { type: 'string', value: 'CIDR', multiple: true, help: 'let the relay reach these addresses, denied by default (private, loopback, ...)', example: '--relay-allow 10.0.0.0/8' },
    'relay-deny': { type: 'string', value: 'CIDR', multiple: true, help: 'never let the relay reach these addresses', example: '--relay-deny 192.0.2.0/24' },
    'relay-address': { type: 'string', value: 'IP', defaultText: '--address (or this host\'s address toward the internet)', help: 'the address relayed traffic leaves from', example: '--relay-address 203.0.113.9' },
    'relay-bandwidth': { type: 'string', value: 'BYTES/S', default: '0', help: 'bandwidth per allocation, bytes per second (0: no limit)', example: '--relay-bandwidth 1000000' },
    'relay-user-quota': { type: 'string', value: 'N', default: '10', help: 'allocations per TURN user at once', example: '--relay-user-quota 20' },
    'relay-total-quota': { type: 'string', value: 'N', default: '2000', help: 'allocations in all at once', example: '--relay-total-quota 5000' },
    'tls-cert': { type: 'string', value: 'FILE', help: 'PEM certificate chain for STUN/TURN over TLS (with --tls-key)', example: '--tls-cert /etc/natpunch/cert.pem' },
    'tls-key': { type: 'string', value: 'FILE', help: 'its private key (PEM)', example: '--tls-key /etc/natpunch/key.pem' },
    'tls-port': { type: 'string', value: 'PORT', default: '5349', help: 'the TLS port', example: '--tls-port 443' },
    'max-peers': { type: 'string', value: 'N', default: '100000', help: 'registered peers this node holds (about 8 KiB each); beyond it registrations get server-full', example: '--max-peers 200000' },
    'max-connections': { type: 'string', value: 'N', default: '120000', help: 'rendezvous WebSockets at once, registered or not (raise the fd limit to match: ulimit -n, LimitNOFILE)', example: '--max-connections 250000' },
    'max-unregistered': { type: 'string', value: 'N', default: '10000', help: 'WebSockets not registered yet, a budget of their own (64 per address; when full the address holding most gives one up)', example: '--max-unregistered 20000' },
    redis: {
      type: 'string', value: 'URL', defaultText: 'none: in memory, this node alone',
      help: 'share the rendezvous registry with other serve nodes through Redis, so a peer registered on any node reaches peers on every other one (several nodes behind one name: give peers every node\'s URL, --server repeated). Unreachable at startup: exit 1',
      example: '--redis redis://:PASSWORD@10.0.0.5:6379/0',
    },
    'node-name': { type: 'string', value: 'NAME', defaultText: 'HOSTNAME:PID', help: 'this node\'s name among the nodes sharing --redis; each must differ', example: '--node-name rzv-1' },
    'registry-ttl': { type: 'string', value: 'MS', default: '10000', help: 'with --redis: how long a registration outlives its node, ms (refreshed every third of it while the peer\'s socket lives), so a node that dies leaves no stale routes for longer', example: '--registry-ttl 5000' },
    'shutdown-grace': { type: 'string', value: 'MS', default: '5000', help: 'on SIGTERM/SIGINT: stop accepting, tell every peer to register elsewhere, and give them this long to leave before closing (connections between peers go on)', example: '--shutdown-grace 2000' },
    'log-level': { type: 'string', value: 'LEVEL', default: 'info', help: 'error, warn, info or debug (debug also prints stack traces of failures)', example: '--log-level debug' },
  },
  notes: [
    'HTTP: GET /healthz answers "ok" to anyone. GET /metrics (Prometheus text), GET / (a live dashboard) and /healthz\'s\n'
    + 'JSON details answer loopback clients, and others only with "Authorization: Bearer TOKEN" given --metrics-token\n'
    + '(401 otherwise; 403 when serve has no token). Every metric is described in docs/metrics.md.',
  ],
  examples: [
    'natpunch serve --address 203.0.113.7 --alt-address 203.0.113.8',
    'natpunch serve --address 127.0.0.1 --alt-address 127.0.0.2 --no-relay',
    'natpunch serve --address 203.0.113.7 --metrics-token "$(cat /etc/natpunch/metrics-token)"',
  ],
};

export const serveUsage = usageLine(serveSpec);

export async function serveCommand(argv: string[]): Promise<number> {
  const values = parseCommand(serveSpec, argv).values as ServeValues & { address?: string[]; 'log-level': string; port: string; 'alt-port': string; 'http-port': string; 'stun-tcp-idle-timeout': string; 'tls-port': string };
  const level = values['log-level']!;
  if (!isLogLevel(level)) throw new UsageError(`natpunch serve: --log-level ${level}: expected error, warn, info or debug`);
  const log = createLogger('serve', level);
  const port = integer('serve', 'port', values.port, 3478);
  const altPort = integer('serve', 'alt-port', values['alt-port'], 3479);
  if (values['alt-address'] && altPort === port && port !== 0) throw new UsageError('natpunch serve: --alt-port must differ from --port (RFC 5780 needs two ports)');
  const addresses = values.address ?? ['0.0.0.0'];
  const [address, ...extraAddresses] = addresses;
  if (new Set(addresses).size !== addresses.length) throw new UsageError(`natpunch serve: --address ${addresses.join(', ')}: each address once`);
  if (values['alt-address'] === address) throw new UsageError('natpunch serve: --alt-address must differ from --address (RFC 5780 needs two IPs)');

  const httpPort = integer('serve', 'http-port', values['http-port'], 8080);
  // Closing idle STUN/TCP connections early stands in for servers and middleboxes that do (peers then learn TCP mappings from short connections).
  const stunTcpIdleTimeoutMs = integer('serve', 'stun-tcp-idle-timeout', values['stun-tcp-idle-timeout'], 30_000, 1, 3_600_000);
  const redisUrl = values['redis'] as string | undefined;
  const nodeName = values['node-name'] as string | undefined;
  if (nodeName !== undefined && !/^[\w.:@-]{1,128}$/.test(nodeName)) throw new UsageError(`natpunch serve: --node-name ${JSON.stringify(nodeName)}: use 1 to 128 letters, digits and . : @ - _`);
  if (nodeName !== undefined && !redisUrl) throw new UsageError('natpunch serve: --node-name only matters with --redis (the nodes sharing one Redis tell each other apart by it)');
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) throw new UsageError(`natpunch serve: --redis ${JSON.stringify(redisUrl)}: expected redis://[:PASSWORD@]HOST[:PORT][/DB] (or rediss:// for TLS)`);
  const registryTtlMs = integer('serve', 'registry-ttl', values['registry-ttl'] as string | undefined, 10_000, 300, 3_600_000);
  const graceMs = integer('serve', 'shutdown-grace', values['shutdown-grace'] as string | undefined, 5_000, 0, 600_000);
  const relay = relayConfig(values);
  const limit = (name: string, fallback: number, min: number, max: number): number => integer('serve', name, values[name] as string | undefined, fallback, min, max);
  const stunLimits = {
    maxTcpConnections: limit('stun-tcp-max-connections', 1024, 1, 1_000_000),
    maxTcpConnectionsPerAddress: limit('stun-tcp-max-per-address', 64, 1, 1_000_000),
    tcpFrameTimeoutMs: limit('stun-tcp-frame-timeout', 10_000, 1, 3_600_000),
    udpRatePerSource: limit('stun-rate-limit', 100, 0, 10_000_000),
  };
  const httpLimits = {
    headersTimeoutMs: limit('http-headers-timeout', 10_000, 1, 3_600_000),
    maxConnections: limit('http-max-connections', 10_000, 1, 10_000_000),
    maxConnectionsPerAddress: limit('http-max-per-address', 256, 1, 10_000_000),
  };
  const metricsToken = values['metrics-token'] as string | undefined;
  if (metricsToken !== undefined && (metricsToken.length < 16 || /\s/.test(metricsToken))) {
    throw new UsageError('natpunch serve: --metrics-token must be at least 16 characters without spaces; use a long random string (e.g. openssl rand -hex 16)');
  }
  const tls = await tlsFiles(values['tls-cert'] as string | undefined, values['tls-key'] as string | undefined, integer('serve', 'tls-port', values['tls-port'], 5349));
  const altAddress = values['alt-address'] as string | undefined;
  for (const [flag, address] of [...addresses.map((a) => ['address', a] as const), ['alt-address', altAddress] as const]) {
    if (address !== undefined && !isIP(address)) throw new UsageError(`natpunch serve: --${flag} ${JSON.stringify(address)} is not an IP address (serve binds to one of this host's addresses)`);
  }
  const rendezvousLimits = {
    maxPeers: integer('serve', 'max-peers', values['max-peers'] as string | undefined, 100_000, 1, 10_000_000),
    maxConnections: integer('serve', 'max-connections', values['max-connections'] as string | undefined, 120_000, 1, 10_000_000),
    maxUnregistered: integer('serve', 'max-unregistered', values['max-unregistered'] as string | undefined, 10_000, 1, 10_000_000),
  };
  const redis = redisUrl ? { url: redisUrl, registryTtlMs, ...(nodeName ? { nodeName } : {}) } : undefined;
  // The server stack (prom-client, ws) is loaded once the flags are known good: `natpunch help`
  // and the other commands, which import this file for its usage, never load it.
  const { NatpunchServer } = await import('../server/natpunch-server.js');
  const server = await NatpunchServer.listen({ address: address!, extraAddresses, port, altAddress, altPort, httpPort, stunTcpIdleTimeoutMs, stunLimits, httpLimits, relay, rendezvousLimits, ...(metricsToken !== undefined ? { metricsToken } : {}), ...(tls ? { tls } : {}), ...(redis ? { redis } : {}) })
    .catch((error: unknown) => { throw listenFailure(error); });
  const stun = server.stun;
  const shutdown = async (signal: string): Promise<void> => {
    // Peers told to move re-register on another node (with --redis) at once; their direct
    // connections to each other never went through this process and go on.
    const peers = server.rendezvous?.stats.peers ?? 0;
    log.info(`${signal}: shutting down; telling ${peers} registered peer${peers === 1 ? '' : 's'} to register elsewhere (up to ${graceMs} ms)`);
    await server.close({ graceMs });
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  const where = [...stun.addresses, ...server.extraStun.map((s) => s.addresses[0]!)].map(formatAddress).join(' ');
  const tlsWhere = stun.tlsAddress ? `; STUN/TURN over TLS ${formatAddress(stun.tlsAddress)}` : '';
  const relayWhat = server.turn ? `; TURN relay on the STUN ports, relaying from ${server.turn.relayAddress}` : '; no built-in relay';
  const external = relay.external?.length ? `; peers also offered ${relay.external.join(' ')}` : '';
  // Before the rendezvous URLs, which end the line: tools read them up to the end of the line.
  const dashboard = server.rendezvousUrl ? `; dashboard and /metrics over HTTP on the rendezvous port (${metricsToken ? 'loopback, or the bearer token' : 'loopback only'})` : '';
  log.info(`ready: STUN on udp+tcp ${where}${values['alt-address'] ? ' (RFC 5780 behaviour discovery on)' : ''}${tlsWhere}${relayWhat}${external}${server.nodeName ? `; node ${server.nodeName} sharing ${redactUrl(redisUrl!)}` : ''}${dashboard}; rendezvous ${[server.rendezvousUrl, ...server.extraRendezvousUrls].join(' ')}`);
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
