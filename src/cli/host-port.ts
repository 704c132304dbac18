import { isIP } from 'node:net';
import { UsageError } from '../errors.js';

export interface HostPort {
  host: string;
  port: number;
}

/**
 * `[HOST:]PORT` as ssh -L takes it: a bare port means 127.0.0.1 (nothing is exposed beyond this
 * machine unless asked); an IPv6 address goes in brackets, `[::1]:8080`.
 */
export function parseHostPort(command: string, what: string, text: string, options: { allowZero?: boolean } = {}): HostPort {
  const match = /^(?:(\[[^\]]+\]|[^:]+):)?(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  const min = options.allowZero ? 0 : 1;
  if (!match || port < min || port > 65535) {
    throw new UsageError(`natpunch ${command}: ${what} ${JSON.stringify(text)}: expected [HOST:]PORT with PORT from ${min} to 65535 (e.g. 8080 or 127.0.0.1:8080)`);
  }
  let host = match[1] ?? '127.0.0.1';
  if (host.startsWith('[')) {
    host = host.slice(1, -1);
    if (isIP(host) !== 6) throw new UsageError(`natpunch ${command}: ${what} ${JSON.stringify(text)}: [${host}] is not an IPv6 address`);
  }
  return { host, port };
}

/** "host:port", with brackets around an IPv6 address. */
export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
