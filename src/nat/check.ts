import dgram from 'node:dgram';
import os from 'node:os';
import { once } from 'node:events';
import { NatpunchError, AbortedError } from '../errors.js';
import { type Clock, realClock, sleep } from '../clock.js';
import {
  type TransportAddress, type StunMessage, AttrType, Method, MessageClass, changeRequest, encodeMessage, formatAddress,
  getAttribute, mappedAddress, newTransactionId, xorMappedAddress, decodeMessage, isStunMessage,
} from '../wire/index.js';
import { StunUdpClient, type StunResponse } from '../stun/udp-client.js';
import type { RetransmissionOptions } from '../stun/retransmission.js';
import { type MappingLifetime, DEFAULT_LIFETIME_MAX_SECONDS, measureMappingLifetime } from './lifetime.js';
import { type Behaviour, type PortAllocation, type Rfc3489Class, classifyPortAllocation, rfc3489Class } from './behaviour.js';

/** What {@link checkNat} reports (`natpunch check --json` prints it). null: not measured, or not measurable. */
export interface NatReport {
  /** The STUN server asked. */
  server: string;
  /** Whether any STUN response came back over UDP. */
  udp: boolean;
  /** This host's public UDP endpoint as the server saw it, "ip:port". */
  mappedAddress: string | null;
  /** Whether a NAT is in the way: the mapped endpoint is not this host's own address and port. */
  natted: boolean | null;
  /** Mapping behaviour (RFC 5780 §4.3, RFC 4787 §4.1). */
  mapping: Behaviour | null;
  /** Filtering behaviour (RFC 5780 §4.4, RFC 4787 §5); needs a server with an alternate address. */
  filtering: Behaviour | null;
  /** The classic RFC 3489 class derived from mapping and filtering. */
  rfc3489: Rfc3489Class | null;
  /** How the NAT picks external ports, from fresh sockets. */
  portAllocation: PortAllocation | null;
  /** Step between consecutive mappings when portAllocation is "sequential". */
  portDelta: number | null;
  /** Whether a packet sent to our own public address comes back to us (null: no NAT, or not measured). */
  hairpin: boolean | null;
  /** The server's RFC 5780 OTHER-ADDRESS, if it has one. */
  otherAddress: string | null;
  /** Round-trip time of the first Binding transaction, ms. */
  rttMs: number | null;
  /** With `lifetime`: the idle time a UDP mapping survived, and the shortest that killed it (null: none did). */
  lifetime: MappingLifetime | null;
}

/** Options of {@link checkNat}. Only `server` is required. */
export interface CheckOptions {
  /** The STUN server (an RFC 5780 one, with an alternate address, for the filtering tests). */
  server: TransportAddress;
  /** Aborts the check (rejects with AbortedError). */
  signal?: AbortSignal;
  /** Local IP to bind (default: any). */
  localAddress?: string;
  /**
   * Local UDP port of the socket that runs test I (default: an ephemeral one), so its mapping is
   * the one a later `natpunch punch --local-port` from the same port gets on an
   * endpoint-independent NAT. The other probes still use ephemeral ports.
   */
  localPort?: number;
  /** Schedule for transactions whose answer is expected (default RTO 250 ms, 5 sends: gives up after ~5.8 s). */
  retransmission?: RetransmissionOptions;
  /** Schedule for the filtering tests, where silence is a normal answer (default RTO 200 ms, 4 sends: ~2.2 s). */
  silenceRetransmission?: RetransmissionOptions;
  /** Fresh sockets probed for the port-allocation pattern (default 6). */
  portSamples?: number;
  /** Measure the UDP mapping lifetime by idling up to maxSeconds (RFC 5780 §4.6). */
  lifetime?: {
    /** The longest idle time probed, seconds (default 120). */
    maxSeconds?: number;
  } | false;
  /** Makes the probe sockets (default `dgram.createSocket`; src/sim passes its own). */
  createSocket?: (type: 'udp4' | 'udp6') => dgram.Socket;
  /** Timers and RTTs run on it (default: the real timers). */
  clock?: Clock;
  /** This host's interface addresses, to tell a mapped address that is our own (default: `os.networkInterfaces()`). */
  interfaceAddresses?: () => readonly string[];
}

const DEFAULT_RETRANSMISSION: RetransmissionOptions = { rto: 250, rc: 5, rm: 8 };
const DEFAULT_SILENCE: RetransmissionOptions = { rto: 200, rc: 4, rm: 4 };

/**
 * NAT behaviour discovery against one STUN server.
 *
 * Runs RFC 5780 §4.3 (mapping) and §4.4 (filtering), derives the RFC 3489 class, finds the
 * port-allocation pattern from fresh sockets, tests hairpinning (§4.5) and, if asked, the
 * binding lifetime (§4.6). Each group of tests uses its own sockets, because earlier traffic
 * opens filters (a restricted cone that has sent to the alternate IP would look full-cone).
 */
export async function checkNat(options: CheckOptions): Promise<NatReport> {
  const probe = new Prober(options);
  try {
    return await probe.run();
  } finally {
    await probe.close();
  }
}

class Prober {
  readonly #options: CheckOptions;
  readonly #sockets: { socket: dgram.Socket; client: StunUdpClient }[] = [];
  readonly #retransmission: RetransmissionOptions;
  readonly #silence: RetransmissionOptions;
  readonly #clock: Clock;

  constructor(options: CheckOptions) {
    this.#options = options;
    this.#clock = options.clock ?? realClock;
    this.#retransmission = options.retransmission ?? DEFAULT_RETRANSMISSION;
    this.#silence = options.silenceRetransmission ?? DEFAULT_SILENCE;
  }

  async run(): Promise<NatReport> {
    const server = this.#options.server;
    const report: NatReport = {
      server: formatAddress(server), udp: false, mappedAddress: null, natted: null, mapping: null, filtering: null,
      rfc3489: null, portAllocation: null, portDelta: null, hairpin: null, otherAddress: null, rttMs: null, lifetime: null,
    };

    // RFC 5780 §4.3 test I: a plain Binding to the primary address.
    const main = await this.#open(this.#options.localPort);
    const first = await this.#tryBinding(main, server, this.#retransmission);
    if (!first) {
      report.rfc3489 = 'udp-blocked';
      return report;
    }
    report.udp = true;
    report.rttMs = Math.round(first.rtt * 10) / 10;
    const mapped1 = mappedOf(first.message);
    report.mappedAddress = formatAddress(mapped1);
    report.natted = !isLocalEndpoint(mapped1, main.socket.address().port, this.#options.interfaceAddresses ?? systemInterfaceAddresses);
    const other = addressAttribute(first.message, AttrType.OtherAddress);
    report.otherAddress = other ? formatAddress(other) : null;

    if (other) {
      report.mapping = await this.#mapping(main, mapped1, other);
      report.filtering = await this.#filtering();
    }
    report.rfc3489 = rfc3489Class(report.natted, report.mapping, report.filtering);

    const allocation = await this.#portAllocation();
    report.portAllocation = allocation?.allocation ?? null;
    report.portDelta = allocation?.delta ?? null;

    if (report.natted) report.hairpin = await this.#hairpin(main, mapped1);
    if (this.#options.lifetime) report.lifetime = await this.#lifetime(this.#options.lifetime.maxSeconds ?? DEFAULT_LIFETIME_MAX_SECONDS);
    return report;
  }

  /** RFC 5780 §4.3 tests II and III, from the socket that ran test I. */
  async #mapping(main: Probe, mapped1: TransportAddress, other: TransportAddress): Promise<Behaviour | null> {
    const server = this.#options.server;
    const second = await this.#tryBinding(main, { ...server, address: other.address }, this.#retransmission);
    if (!second) return null;
    const mapped2 = mappedOf(second.message);
    if (sameEndpoint(mapped1, mapped2)) return 'endpoint-independent';
    const third = await this.#tryBinding(main, other, this.#retransmission);
    if (!third) return null;
    return sameEndpoint(mapped2, mappedOf(third.message)) ? 'address-dependent' : 'address-and-port-dependent';
  }

  /**
   * RFC 5780 §4.4 tests II and III. Each runs on a fresh socket that has talked only to the
   * primary address, so no earlier packet has opened the filter; they run side by side.
   */
  async #filtering(): Promise<Behaviour | null> {
    const server = this.#options.server;
    const ask = async (change: { changeIp: boolean; changePort: boolean }): Promise<boolean | null> => {
      const probe = await this.#open();
      if (!(await this.#tryBinding(probe, server, this.#retransmission))) return null;
      const answer = await this.#tryBinding(probe, server, this.#silence, [{ type: AttrType.ChangeRequest, value: changeRequest.encode(change) }]);
      return answer !== null;
    };
    const [both, portOnly] = await Promise.all([ask({ changeIp: true, changePort: true }), ask({ changeIp: false, changePort: true })]);
    if (both === null || portOnly === null) return null;
    if (both) return 'endpoint-independent';
    return portOnly ? 'address-dependent' : 'address-and-port-dependent';
  }

  /** Fresh sockets, one after another, to the same server endpoint: how does the NAT choose ports? */
  async #portAllocation(): Promise<ReturnType<typeof classifyPortAllocation>> {
    const samples: { local: number; mapped: number }[] = [];
    for (let i = 0; i < (this.#options.portSamples ?? 6); i++) {
      const probe = await this.#open();
      const answer = await this.#tryBinding(probe, this.#options.server, this.#retransmission);
      if (answer) samples.push({ local: probe.socket.address().port, mapped: mappedOf(answer.message).port });
    }
    return classifyPortAllocation(samples);
  }

  /**
   * RFC 5780 §4.5: send from a second socket to the first socket's public address. The packet
   * comes back only if the NAT hairpins — what two peers behind the same NAT need to reach
   * each other at their public addresses.
   */
  async #hairpin(main: Probe, mapped: TransportAddress): Promise<boolean> {
    const sender = await this.#open();
    const transactionId = newTransactionId();
    const bytes = encodeMessage({ method: Method.Binding, messageClass: MessageClass.Indication, transactionId, attributes: [] });
    const arrived = new Promise<boolean>((resolve) => {
      const onMessage = (data: Buffer): void => {
        if (!isStunMessage(data)) return;
        try {
          if (Buffer.from(decodeMessage(data).transactionId).equals(transactionId)) {
            main.socket.off('message', onMessage);
            resolve(true);
          }
        } catch { /* not ours */ }
      };
      main.socket.on('message', onMessage);
    });
    const ac = new AbortController();
    const sending = (async () => {
      for (const wait of [0, 100, 200, 400, 800]) {
        await sleep(this.#clock, wait, ac.signal);
        sender.socket.send(bytes, mapped.port, mapped.address);
      }
      await sleep(this.#clock, 1000, ac.signal);
      return false;
    })().catch(() => false);
    const result = await Promise.race([arrived, sending, this.#aborted()]);
    ac.abort();
    return result;
  }

  /** RFC 5780 §4.6: see lifetime.ts. */
  async #lifetime(maxSeconds: number): Promise<MappingLifetime> {
    return measureMappingLifetime({
      server: this.#options.server, maxSeconds, localAddress: this.#options.localAddress, signal: this.#options.signal,
      retransmission: this.#retransmission, silenceRetransmission: this.#silence,
      createSocket: this.#options.createSocket, clock: this.#options.clock,
    });
  }

  async #tryBinding(probe: Probe, to: TransportAddress, retransmission: RetransmissionOptions, attributes: { type: number; value: Uint8Array }[] = []): Promise<StunResponse | null> {
    try {
      return await probe.client.request(to, { attributes, retransmission, signal: this.#options.signal });
    } catch (error) {
      if (NatpunchError.is(error) && error.code === 'ERR_STUN_TIMEOUT') return null;
      throw error;
    }
  }

  #aborted(): Promise<never> {
    const signal = this.#options.signal;
    return new Promise((_, reject) => {
      if (!signal) return;
      if (signal.aborted) reject(new AbortedError());
      signal.addEventListener('abort', () => reject(new AbortedError()), { once: true });
    });
  }

  async #open(port = 0): Promise<Probe> {
    const family = this.#options.server.family === 6 ? 'udp6' : 'udp4';
    const socket = (this.#options.createSocket ?? dgram.createSocket)(family);
    socket.on('error', () => undefined);
    socket.bind(port, this.#options.localAddress);
    await once(socket, 'listening');
    const probe = { socket, client: new StunUdpClient(socket, { clock: this.#clock }) };
    this.#sockets.push(probe);
    return probe;
  }

  async close(): Promise<void> {
    for (const { socket, client } of this.#sockets) {
      client.close();
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    }
  }
}

interface Probe {
  socket: dgram.Socket;
  client: StunUdpClient;
}

function mappedOf(message: StunMessage): TransportAddress {
  const xor = getAttribute(message, AttrType.XorMappedAddress);
  if (xor) return xorMappedAddress.decode(xor, message.transactionId);
  const plain = getAttribute(message, AttrType.MappedAddress);
  if (plain) return mappedAddress.decode(plain);
  throw new NatpunchError('ERR_STUN_DECODE', 'Binding response carries neither XOR-MAPPED-ADDRESS nor MAPPED-ADDRESS');
}

function addressAttribute(message: StunMessage, type: number): TransportAddress | null {
  const value = getAttribute(message, type);
  if (!value) return null;
  try {
    return mappedAddress.decode(value);
  } catch {
    return null;
  }
}

function sameEndpoint(a: TransportAddress, b: TransportAddress): boolean {
  return a.address === b.address && a.port === b.port;
}

/** No NAT between us and the server: the mapped address is one of ours, with our port. */
function isLocalEndpoint(mapped: TransportAddress, localPort: number, interfaceAddresses: () => readonly string[]): boolean {
  if (mapped.port !== localPort) return false;
  return interfaceAddresses().includes(mapped.address);
}

function systemInterfaceAddresses(): string[] {
  return Object.values(os.networkInterfaces()).flatMap((list) => list?.map((i) => i.address) ?? []);
}
