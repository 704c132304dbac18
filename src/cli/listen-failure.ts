/**
 * A server socket that could not bind or listen, in one line: which address and port, why in
 * words, and what to do (instead of Node's `bind EADDRINUSE 127.0.0.1:3478` with a stack).
 */
import { NatpunchError } from '../errors.js';

export function listenFailure(error: unknown): unknown {
  const e = error as NodeJS.ErrnoException & { address?: string; port?: number };
  if (!(error instanceof Error) || typeof e.code !== 'string' || !/^(bind|listen)/.test(e.syscall ?? '')) return error;
  const where = e.address ? `${e.address.includes(':') ? `[${e.address}]` : e.address}${e.port ? `:${e.port}` : ''}` : 'the address';
  const udp = e.syscall === 'bind';
  const what = udp ? `UDP ${where}` : `TCP ${where}`;
  switch (e.code) {
    case 'EADDRINUSE':
      return new NatpunchError('ERR_LISTEN', `natpunch serve: cannot listen on ${what}: the port is in use (another natpunch serve, or another server); stop it, or choose other ports (--port, --alt-port, --http-port)`, { cause: error });
    case 'EADDRNOTAVAIL':
      return new NatpunchError('ERR_LISTEN', `natpunch serve: cannot listen on ${what}: this host has no such address; give one of its own (ip address shows them) to --address / --alt-address`, { cause: error });
    case 'EACCES':
      return new NatpunchError('ERR_LISTEN', `natpunch serve: cannot listen on ${what}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE); choose a port from 1024 up`, { cause: error });
    default:
      return new NatpunchError('ERR_LISTEN', `natpunch serve: cannot listen on ${what}: ${e.message}`, { cause: error });
  }
}
