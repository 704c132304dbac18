/**
 * The lab's topology in the sim: the same plan (src/lab/topology.ts `planLab`), so the same
 * names and addresses — server 198.51.100.10 and .11, routers `a` (WAN 203.0.113.10) and `b`
 * (203.0.113.20) with clients a1, b1 (10.0.x.2, or 192.0.2.x for kinds that do not translate),
 * an optional carrier NAT (100.64.0.0/10) above a home router — built from sim routers and
 * hosts instead of namespaces and nftables.
 *
 * What the lab cannot do and the sim adds: latency and jitter on each WAN link (the lab has
 * no netem). What the sim leaves out: miniupnpd. `tcpUnsolicited` is the router's answer to an
 * unsolicited TCP segment, as in the lab (src/sim/tcp-conntrack.ts).
 */
import { type RouterOptions, SERVER_ADDRESSES, planLab } from '../lab/topology.js';
import { StunServer } from '../stun/server.js';
import { SimError } from '../errors.js';
import type { Socket, SocketOptions, SocketType } from 'node:dgram';
import type { LinkOptions } from './link.js';
import { natPreset } from './nat-presets.js';
import { Network, type Host, type Router } from './network.js';
import { createSimSocket } from './socket.js';
import { createSimTcpNet } from './tcp-socket.js';
import type { TcpNet } from '../tcp-net.js';
import { VirtualClock } from './virtual-clock.js';

export interface SimRouterOptions extends RouterOptions {
  /** Latency and jitter of this router's WAN link (loss comes from `lossPercent`, as in the lab). */
  wan?: Omit<LinkOptions, 'loss'>;
}

export interface SimLabOptions {
  a: SimRouterOptions;
  b?: SimRouterOptions;
  /** Seed for every random draw: ports, loss, jitter (default 1). */
  seed?: number | string;
  /** The clock to run on (default: a new VirtualClock). */
  clock?: VirtualClock;
  /** The server's link to the internet (default: no delay, no loss). */
  serverLink?: LinkOptions;
}

export interface SimLab {
  readonly clock: VirtualClock;
  readonly network: Network;
  readonly server: Host;
  /** 'a', 'b', and 'carrier-a' / 'carrier-b' when asked for. */
  readonly routers: Readonly<Record<string, Router>>;
  /** 'a1', 'b1' (and 'a2', 'b2' with two clients). */
  readonly hosts: Readonly<Record<string, Host>>;
  /** A socket factory for host `name` (server included), for the `createSocket` options of checkNat and StunServer. */
  socketFactory(name: string): (type?: SocketType | SocketOptions) => Socket;
  /** node:net on host `name` (server included), for the `net` options of the TCP code. */
  tcpNet(name: string): TcpNet;
}

/** Builds the lab's topology in a fresh sim network. */
export function createSimLab(options: SimLabOptions): SimLab {
  const clock = options.clock ?? new VirtualClock();
  const network = new Network({ clock, seed: options.seed ?? 1 });
  // planLab validates the options as the lab does; the prefix names namespaces we never make.
  const plan = planLab('sim', options.a, options.b);
  const server = network.addHost({ name: 'server', addresses: plan.server.addresses, link: options.serverLink });
  const routers: Record<string, Router> = {};
  const byNetns = new Map<string, Router>();
  const sideOptions = (name: string): SimRouterOptions | undefined => (name.endsWith('a') ? options.a : options.b);
  for (const r of plan.routers) {
    const home = !r.name.startsWith('carrier-');
    const side = sideOptions(r.name);
    const parent = byNetns.get(r.uplink.netns);
    // The WAN link that faces the internet carries the side's latency; a home router behind a
    // carrier reaches it over a LAN (no delay). Loss is on the home router's WAN, as in the lab.
    const facesInternet = parent === undefined;
    const link: LinkOptions = {
      ...(facesInternet ? side?.wan : {}),
      loss: home ? r.options.lossPercent / 100 : 0,
    };
    const router = network.addRouter({
      name: r.name,
      parent,
      wanAddress: r.wanAddress,
      nat: natPreset(r.kind, {
        hairpin: r.options.hairpin,
        ...(r.options.udpTimeoutSeconds !== null ? { mappingTimeoutMs: r.options.udpTimeoutSeconds * 1000 } : {}),
      }),
      link,
      tcpUnsolicited: r.options.tcpUnsolicited,
    });
    routers[r.name] = router;
    byNetns.set(r.netns, router);
  }
  const hosts: Record<string, Host> = {};
  for (const h of plan.hosts) {
    const router = routers[h.name.slice(0, 1)];
    if (router === undefined) throw new SimError(`sim lab: host ${h.name} has no router`);
    hosts[h.name] = network.addHost({ name: h.name, parent: router, addresses: h.addresses });
  }
  const all: Record<string, Host> = { ...hosts, server };
  const hostNamed = (name: string): Host => {
    const host = all[name];
    if (host === undefined) throw new SimError(`sim lab: no host ${JSON.stringify(name)}, expected one of ${Object.keys(all).join(', ')}`);
    return host;
  };
  return {
    clock, network, server, routers, hosts,
    socketFactory(name) {
      const host = hostNamed(name);
      return (type) => createSimSocket(host, type);
    },
    tcpNet: (name) => createSimTcpNet(hostNamed(name)),
  };
}

/** The lab's STUN port, where `natpunch serve` listens in every lab test. */
export const STUN_PORT = 3478;

/**
 * `natpunch serve`'s STUN part on the server host, as the lab tests start it: both addresses,
 * ports 3478 and 3479, RFC 5780 answers; UDP only.
 */
export function startSimStunServer(lab: SimLab): Promise<StunServer> {
  return lab.clock.run(StunServer.listen({
    address: SERVER_ADDRESSES[0], altAddress: SERVER_ADDRESSES[1], port: STUN_PORT, tcp: false, createUdpSocket: lab.socketFactory('server'),
  }));
}
