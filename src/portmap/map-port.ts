/**
 * mapPort: ask the gateway to forward a port, by whichever of PCP, NAT-PMP and UPnP-IGD it speaks.
 *
 * PCP goes first, and NAT-PMP only when the gateway answers PCP with UNSUPP_VERSION (RFC 6887
 * §9): the two share port 5351, each answers in one round trip, and sending both at once would
 * make a dual-stack gateway hold two mappings. UPnP-IGD starts after a short head start (500 ms)
 * or as soon as PCP/NAT-PMP have failed, in parallel, as Happy Eyeballs races address families
 * (RFC 8305 §5): it needs several round trips (M-SEARCH with its MX wait, an HTTP GET, SOAP), so
 * racing it from the start would usually make a second mapping to throw away, and waiting for
 * PCP's full schedule (3 s before its first retransmission) would waste the budget of a gateway
 * that speaks only UPnP. The first mapping made wins; one made later by the other branch is
 * deleted at once. Everything runs within one budget (`timeoutMs`, and `signal`).
 *
 * A mapping whose external address is private is no use to anyone outside (double NAT): it is
 * deleted and reported as `double-nat`.
 * @see RFC 6886, RFC 6887, UPnP IGD:1, RFC 8305 §5
 */

import { createSocket as createUdpSocket, type Socket } from 'node:dgram';
import { AbortedError, PortMapError, type PortMapFailure } from '../errors.js';
import { type Clock, realClock, sleep } from '../clock.js';
import { deadline } from '../deadline.js';
import { defaultGateway } from './default-gateway.js';
import { NatPmpDriver, PcpDriver, PcpWithNatPmpFallback, UpnpIgdDriver, type MappingTarget } from './drivers.js';
import { externalAddressProblem } from './external-address.js';
import { GatewaySocket } from './gateway-socket.js';
import { PORT_MAP_METHODS, PortMapping, type MappingDriver, type PortMapMethod } from './mapping.js';
import { NAT_PMP_PORT, checkPort, type MappingProtocol } from './nat-pmp-message.js';
import { NatPmpClient } from './nat-pmp-client.js';
import { PcpClient } from './pcp-client.js';
import { UpnpIgdClient, type UpnpIgdOptions } from './upnp-igd-client.js';

/** RFC 6886 §3.3: "The RECOMMENDED Port Mapping Lifetime is 7200 seconds (two hours)." */
export const DEFAULT_LIFETIME_SECONDS = 7200;
export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_UPNP_HEAD_START_MS = 500;

/** Options of {@link mapPort}. `protocol` and `internalPort` are required. */
export interface MapPortOptions {
  /** Map a 'udp' or a 'tcp' port. */
  protocol: MappingProtocol;
  /** The local port to forward to (this host's address is the one facing the gateway). */
  internalPort: number;
  /** Requested lifetime; the gateway may grant another. Default 7200 s. */
  lifetimeSeconds?: number;
  /** Default: the IPv4 default route's gateway (/proc/net/route). */
  gateway?: string;
  /** Which protocols may be used (default all three); one alone forces it. */
  methods?: readonly PortMapMethod[];
  /** Budget for making the mapping, all protocols together. Default 10 s. */
  timeoutMs?: number;
  /** How long PCP/NAT-PMP go alone before UPnP-IGD starts too. Default 500 ms. */
  upnpHeadStartMs?: number;
  /** UPnP's NewPortMappingDescription. Default 'natpunch'. */
  description?: string;
  /** Aborts the attempt (rejects with AbortedError). */
  signal?: AbortSignal;
  /** The gateway's NAT-PMP/PCP port (default 5351; tests use another). */
  gatewayPort?: number;
  /** @internal UPnP discovery overrides (tests point SSDP at loopback). */
  upnp?: Partial<Pick<UpnpIgdOptions, 'ssdp' | 'gatewaySsdpPort' | 'discoveryMs' | 'httpTimeoutMs'>>;
  /** PCP's initial retransmission time (RFC 6887 §8.1.1: 3 s). */
  pcpIrtMs?: number;
  /** Time source and timers (default: the real clock; tests pass a fake). */
  clock?: Clock;
  /** Makes the UDP socket for PCP/NAT-PMP/SSDP (default: `dgram.createSocket('udp4')`; tests pass a fake). */
  createSocket?: () => Socket;
  /** Reads /proc/net/route (tests pass a fake). */
  readFile?: (path: string) => Promise<string>;
}

/**
 * Map `internalPort` on the gateway.
 * @throws PortMapError saying why no protocol could (its `attempts` hold each one's failure)
 * @throws AbortedError when `signal` aborts
 */
export async function mapPort(options: MapPortOptions): Promise<PortMapping> {
  checkPort('mapPort: internalPort', options.internalPort, 1);
  const lifetimeSeconds = options.lifetimeSeconds ?? DEFAULT_LIFETIME_SECONDS;
  if (!Number.isInteger(lifetimeSeconds) || lifetimeSeconds < 1) throw new RangeError(`mapPort: lifetimeSeconds ${lifetimeSeconds} is not a positive integer`);
  const methods = options.methods ?? PORT_MAP_METHODS;
  if (methods.length === 0 || methods.some((m) => !PORT_MAP_METHODS.includes(m))) throw new RangeError(`mapPort: methods ${JSON.stringify(methods)}; expected some of ${PORT_MAP_METHODS.join(', ')}`);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const clock = options.clock ?? realClock;
  const gateway = options.gateway ?? await defaultGateway(options.readFile);
  const target: MappingTarget = { protocol: options.protocol, internalPort: options.internalPort };
  const what = `port mapping ${options.protocol.toUpperCase()} ${options.internalPort} at gateway ${gateway}`;

  const limit = deadline(timeoutMs, options.signal);
  const losers = new AbortController();
  const signal = AbortSignal.any([limit.signal, losers.signal]);
  let won = false;

  /** Turn a granted driver into a PortMapping, or fail (and delete) when it is useless. */
  const attempt = async (first: PortMapMethod, make: () => Promise<MappingDriver>): Promise<PortMapping> => {
    let driver: MappingDriver | undefined;
    let method = first;
    try {
      driver = await make();
      const grant = await driver.map(lifetimeSeconds, signal);
      method = driver.method;
      const problem = externalAddressProblem(grant.externalAddress);
      if (problem !== undefined || grant.lifetimeSeconds === 0) {
        await driver.unmap(signal).catch(() => undefined);
        if (problem === 'not-public') {
          throw new PortMapError('double-nat', `${what}: ${method} mapped it to ${grant.externalAddress}:${grant.externalPort}, a private address: another NAT is in front of this gateway (double NAT), so the mapping reaches nobody outside; deleted it`, { method, externalAddress: grant.externalAddress });
        }
        throw new PortMapError('refused', `${what}: ${method} granted ${grant.externalAddress}:${grant.externalPort} for ${grant.lifetimeSeconds} s: the gateway has no usable external address yet; try again later`, { method });
      }
      const mapping = new PortMapping(driver, grant, { ...target, requestedLifetimeSeconds: lifetimeSeconds, clock });
      driver = undefined;
      if (won) {
        // The other branch got there first: this second mapping is not wanted.
        await mapping.close().catch(() => undefined);
        throw new PortMapError('lost', `${what}: ${method} answered after another protocol had mapped the port; deleted its mapping`, { method });
      }
      won = true;
      losers.abort();
      return mapping;
    } catch (error) {
      if (driver !== undefined) method = driver.method;
      driver?.close();
      throw asAttemptError(error, method, what, limit.signal, options.signal, timeoutMs);
    }
  };

  const pcpFamily = methods.includes('pcp') || methods.includes('nat-pmp')
    ? attempt(methods.includes('pcp') ? 'pcp' : 'nat-pmp', async () => {
      const socket = await GatewaySocket.open(gateway, options.gatewayPort ?? NAT_PMP_PORT, { clock, ...(options.createSocket ? { createSocket: options.createSocket } : {}) });
      // The RFCs' own schedules; `signal` (the budget here, renewal and deletion limits later) cuts them.
      const natPmp = (): MappingDriver => new NatPmpDriver(new NatPmpClient(socket, { clock }), target);
      if (!methods.includes('pcp')) return natPmp();
      const pcp = new PcpDriver(new PcpClient(socket, { clock, ...(options.pcpIrtMs ? { schedule: { irtMs: options.pcpIrtMs } } : {}) }), target);
      return methods.includes('nat-pmp') ? new PcpWithNatPmpFallback(pcp, natPmp) : pcp;
    })
    : undefined;

  const upnp = methods.includes('upnp-igd')
    ? (async () => {
      if (pcpFamily !== undefined) {
        await Promise.race([sleep(clock, options.upnpHeadStartMs ?? DEFAULT_UPNP_HEAD_START_MS, signal).catch(() => undefined), pcpFamily.then(() => undefined, () => undefined)]);
      }
      if (won) throw new PortMapError('lost', `${what}: not needed, another protocol mapped the port`, { method: 'upnp-igd' });
      return attempt('upnp-igd', async () => {
        const localAddress = await localAddressTowards(gateway, options.createSocket);
        const client = await UpnpIgdClient.discover({ gateway, localAddress, clock, ...options.upnp, ...(options.createSocket ? { createSocket: options.createSocket } : {}) }, signal);
        return new UpnpIgdDriver(client, target, options.description ?? 'natpunch');
      });
    })()
    : undefined;

  try {
    return await Promise.any([pcpFamily, upnp].filter((p): p is Promise<PortMapping> => p !== undefined));
  } catch (error) {
    if (options.signal?.aborted) throw new AbortedError(`${what}: aborted`, { cause: options.signal.reason });
    // Anything else (a socket error the clients did not foresee) still names its protocol's failure.
    const attempts = (error as AggregateError).errors.filter((e) => !(e instanceof AbortedError)).map((e: unknown) =>
      e instanceof PortMapError ? e : new PortMapError('no-gateway', `${what}: ${(e as Error)?.message ?? String(e)}`, { cause: e }));
    throw combined(what, attempts);
  } finally {
    limit.clear();
  }
}

/** This host's address towards `gateway`: what a connected UDP socket is bound to (no packet is sent). */
async function localAddressTowards(gateway: string, createSocket?: () => Socket): Promise<string> {
  const socket = createSocket?.() ?? createUdpSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(NAT_PMP_PORT, gateway, () => resolve());
    });
    return socket.address().address;
  } catch (error) {
    throw new PortMapError('no-gateway', `port mapping: no route to gateway ${gateway} (${(error as Error).message})`, { method: 'upnp-igd', cause: error });
  } finally {
    socket.close();
  }
}

function asAttemptError(error: unknown, method: PortMapMethod, what: string, limit: AbortSignal, user: AbortSignal | undefined, timeoutMs: number): unknown {
  if (error instanceof AbortedError && limit.aborted && !user?.aborted) {
    return new PortMapError('timeout', `${what}: ${method} got no answer within the ${timeoutMs} ms budget`, { method, cause: error });
  }
  return error;
}

/** Most telling first: a gateway that answered says more than one that stayed silent. */
const PRECEDENCE: readonly PortMapFailure[] = ['double-nat', 'refused', 'unsupported', 'timeout', 'no-gateway', 'lost'];

function combined(what: string, attempts: PortMapError[]): PortMapError {
  const relevant = attempts.filter((a) => a.reason !== 'lost');
  const reason = PRECEDENCE.find((r) => relevant.some((a) => a.reason === r)) ?? 'no-gateway';
  const first = relevant.find((a) => a.reason === reason);
  const details = relevant.map((a) => `${a.method ?? '?'}: ${a.message}`).join('; ');
  const next = reason === 'double-nat'
    ? 'ask the outer NAT for the mapping, or rely on punching and the relay'
    : 'turn on UPnP, NAT-PMP or PCP on the router, or rely on punching and the relay';
  return new PortMapError(reason, `${what} failed (${reason}): ${details}; ${next}`, {
    attempts: relevant,
    ...(first?.method ? { method: first.method } : {}),
    ...(first?.status ? { status: first.status } : {}),
    ...(first?.externalAddress ? { externalAddress: first.externalAddress } : {}),
  });
}
