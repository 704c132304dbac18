/**
 * Low-TTL priming (src/punch/tcp-ttl.ts) on sim sockets: the native addon's calls, done with a
 * SimTcpSocket whose first SYN carries the priming TTL, with "file descriptors" that are only
 * handles into this table, and the hop trace answered from the sim's topology.
 *
 * - primedConnect: a connect from localAddress:localPort whose first SYN has TTL `ttl` (it dies
 *   at the router where the TTL runs out, after passing and opening our own NAT), quiet
 *   (IP_MINTTL 255: every segment from the network is ignored) until endQuiet;
 * - connectState: 'connecting', 'connected', or the error code the connect failed with;
 * - traceHops: what the real trace would hear with ICMP, which the sim does not carry: "time
 *   exceeded" from each router below the one that owns the target address, "port unreachable"
 *   from that one. `measure` feeds it to the real rule, primingTtlFromTrace.
 */
import type net from 'node:net';
import { SimError } from '../errors.js';
import { type PrimingTtl, type TcpTtlAddon, type TraceHop, type TtlPriming, MAX_PRIMING_TTL, TRACE_WAIT_MS, primingTtlFromTrace } from '../punch/tcp-ttl.js';
import { sleep } from '../clock.js';
import type { Host, Router } from './network.js';
import { SimTcpSocket } from './tcp-socket.js';

/** Where sim fds start: far from anything a reader would take for a real one. */
const FIRST_FD = 10_000;

/** Priming on `host`'s sim sockets, for tcpSimultaneousOpen's `ttlPriming` option. */
export function simTtlPriming(host: Host): TtlPriming {
  const sockets = new Map<number, { socket: SimTcpSocket; error?: string }>();
  let nextFd = FIRST_FD;
  const entry = (fd: number): { socket: SimTcpSocket; error?: string } => {
    const found = sockets.get(fd);
    if (found === undefined) throw Object.assign(new Error(`sim tcp-ttl: fd ${fd} is not open`), { code: 'EBADF' });
    return found;
  };
  const addon: TcpTtlAddon = {
    primeSyn(localAddress, localPort, remoteAddress, remotePort, ttl) {
      const fd = addon.primedConnect(localAddress, localPort, remoteAddress, remotePort, ttl);
      // Closed once the SYN has left; closing in SYN-SENT sends nothing.
      host.network.clock.setTimeout(() => addon.closeFd(fd), 0);
    },
    primedConnect(localAddress, localPort, remoteAddress, remotePort, ttl, quiet = true) {
      const socket = new SimTcpSocket(host.tcp, { allowHalfOpen: true });
      const fd = nextFd++;
      const record: { socket: SimTcpSocket; error?: string } = { socket };
      sockets.set(fd, record);
      socket.on('error', (error: NodeJS.ErrnoException) => { record.error ??= error.code ?? error.message; });
      if (quiet) socket.minTtl = 255;
      socket.connect({ host: remoteAddress, port: remotePort, localAddress, localPort, firstSynTtl: ttl });
      return fd;
    },
    endQuiet(fd) {
      entry(fd).socket.minTtl = 0;
    },
    connectState(fd) {
      const { socket, error } = entry(fd);
      if (error !== undefined) return error;
      if (socket.connecting) return 'connecting';
      return socket.readyState === 'closed' ? 'EBADF' : 'connected';
    },
    closeFd(fd) {
      const found = sockets.get(fd);
      sockets.delete(fd);
      found?.socket.destroy();
    },
    async traceHops(targetAddress, maxTtl, waitMs) {
      const hops: TraceHop[] = [];
      let router: Router | undefined = host.parent;
      for (let ttl = 1; ttl <= maxTtl && router !== undefined; ttl++, router = router.parent) {
        if (router.nat?.ownsAddress(targetAddress) || router.wanAddress === targetAddress) {
          hops.push({ ttl, type: 3, code: 3, offender: targetAddress });
          break;
        }
        hops.push({ ttl, type: 11, code: 0, offender: router.wanAddress ?? null });
      }
      await sleep(host.network.clock, waitMs);
      return hops;
    },
  };
  return {
    available: () => ({ ok: true }),
    addon: () => addon,
    async measure(publicAddress: string, localAddress: string): Promise<PrimingTtl> {
      const hops = await addon.traceHops(publicAddress, MAX_PRIMING_TTL, TRACE_WAIT_MS, localAddress);
      return primingTtlFromTrace(publicAddress, hops, host.interfaceAddresses());
    },
    adopt(fd: number): net.Socket {
      const found = sockets.get(fd);
      if (found === undefined) throw new SimError(`sim tcp-ttl: adopt(${fd}): no such fd`);
      sockets.delete(fd);
      return found.socket as unknown as net.Socket;
    },
  };
}
