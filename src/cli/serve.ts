import { UsageError } from '../errors.js';
import { NatpunchServer } from '../server/natpunch-server.js';
import { formatAddress } from '../wire/index.js';
import { parseArgs } from 'node:util';
import { usageErrors, integer } from './args.js';
import { createLogger, isLogLevel } from './log.js';

export const serveUsage = `natpunch serve [--address IP] [--alt-address IP] [--port 3478] [--alt-port 3479]
               [--http-port 8080] [--stun-tcp-idle-timeout MS] [--no-relay] [--redis URL] [--log-level info]`;

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = usageErrors('serve', () => parseArgs({ args: argv, strict: true, options: {
    address: { type: 'string', default: '0.0.0.0' },
    'alt-address': { type: 'string' },
    port: { type: 'string' },
    'alt-port': { type: 'string' },
    'http-port': { type: 'string' },
    'stun-tcp-idle-timeout': { type: 'string' },
    'no-relay': { type: 'boolean', default: false },
    redis: { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
  } }));
  const level = values['log-level']!;
  if (!isLogLevel(level)) throw new UsageError(`natpunch serve: --log-level ${level}: expected error, warn, info or debug`);
  const log = createLogger('serve', level);
  const port = integer('serve', 'port', values.port, 3478);
  const altPort = integer('serve', 'alt-port', values['alt-port'], 3479);
  if (values['alt-address'] && altPort === port && port !== 0) throw new UsageError('natpunch serve: --alt-port must differ from --port (RFC 5780 needs two ports)');
  if (values['alt-address'] === values.address) throw new UsageError('natpunch serve: --alt-address must differ from --address (RFC 5780 needs two IPs)');

  const httpPort = integer('serve', 'http-port', values['http-port'], 8080);
  // Closing idle STUN/TCP connections early stands in for servers and middleboxes that do (peers then learn TCP mappings from short connections).
  const stunTcpIdleTimeoutMs = integer('serve', 'stun-tcp-idle-timeout', values['stun-tcp-idle-timeout'], 30_000, 1, 3_600_000);
  if (values.redis) log.warn('--redis: the Redis registry is not implemented yet; using in-memory state');
  const server = await NatpunchServer.listen({ address: values.address!, port, altAddress: values['alt-address'], altPort, httpPort, stunTcpIdleTimeoutMs });
  const stun = server.stun;
  const shutdown = async (signal: string): Promise<void> => {
    log.info(`${signal}: shutting down`);
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  const where = stun.addresses.map(formatAddress).join(' ');
  log.info(`ready: STUN on udp+tcp ${where}${values['alt-address'] ? ' (RFC 5780 behaviour discovery on)' : ''}; rendezvous ${server.rendezvousUrl}`);
  await new Promise(() => undefined);
  return 0;
}
