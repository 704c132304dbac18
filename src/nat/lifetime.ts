/**
 * How long a NAT keeps an idle UDP mapping: the binding lifetime discovery of RFC 5780 §4.6.
 *
 * A holder socket X(t) makes a mapping with one Binding, idles t seconds, then a second socket
 * (the asker) sends a Binding with RESPONSE-PORT = X(t)'s mapped port (RFC 5780 §7.5): the server
 * answers to that port on the NAT's public IP, and X(t) hears it only if its mapping outlived t.
 * The probes run side by side with t doubling from 2 s, so the answer is a bracket: the longest
 * idle that survived and the shortest that killed the mapping (within a factor of two).
 *
 * Used by `natpunch check --lifetime` (src/nat/check.ts) and by the peer, which sizes its
 * keepalives from the result (src/peer/keepalive.ts). Bounded: one holder socket per probe plus
 * one asker; probes longer than one that already died are cancelled (a mapping that died after
 * t idle seconds dies after any longer idle too).
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { AbortedError, NatpunchError } from '../errors.js';
import { type Clock, realClock, sleep } from '../clock.js';
import { type TransportAddress, AttrType, isStunMessage, reflexiveAddress, responsePort } from '../wire/index.js';
import { StunUdpClient, type StunResponse } from '../stun/udp-client.js';
import type { RetransmissionOptions } from '../stun/retransmission.js';

/** How long the NAT keeps an idle UDP mapping, bracketed by probes (RFC 5780 §4.6). */
export interface MappingLifetime {
  /** The longest idle time, s, after which a mapping still answered (null: none survived, or none measured yet). */
  aliveSeconds: number | null;
  /** The shortest idle time, s, that killed a mapping (null: none did). */
  expiredSeconds: number | null;
}

export interface LifetimeProgress extends MappingLifetime {
  /** No probe is still running: the bracket will not change. */
  final: boolean;
}

export interface LifetimeOptions {
  /** The STUN server; it must honour RESPONSE-PORT (RFC 5780 §7.5). */
  server: TransportAddress;
  /** Longest idle time probed, s (default 120: probes of 2, 4, …, 64 s). */
  maxSeconds?: number;
  /** Local IP for the probe sockets (default: any). */
  localAddress?: string;
  /** Cancels every probe; the measurement then rejects with AbortedError. */
  signal?: AbortSignal;
  /** Schedule of the holder's first Binding (default RTO 250 ms, 5 sends). */
  retransmission?: RetransmissionOptions;
  /** Schedule of the asker's Binding, whose silence means "expired" (default RTO 200 ms, 4 sends: ~2.2 s). */
  silenceRetransmission?: RetransmissionOptions;
  /** Called after each probe finishes with the bracket so far. */
  onProgress?: (progress: LifetimeProgress) => void;
  /** Makes the probe sockets (default `dgram.createSocket`; src/sim passes its own). */
  createSocket?: (type: 'udp4' | 'udp6') => dgram.Socket;
  /** Idle times and retransmissions run on it (default: the real timers). */
  clock?: Clock;
}

const DEFAULT_RETRANSMISSION: RetransmissionOptions = { rto: 250, rc: 5, rm: 8 };
const DEFAULT_SILENCE: RetransmissionOptions = { rto: 200, rc: 4, rm: 4 };
export const DEFAULT_LIFETIME_MAX_SECONDS = 120;

/** The idle times probed: 2, 4, 8, … up to maxSeconds. */
export function lifetimeIdles(maxSeconds: number): number[] {
  const idles: number[] = [];
  for (let t = 2; t <= maxSeconds; t *= 2) idles.push(t);
  return idles;
}

/**
 * Measures the UDP mapping lifetime toward `server` (RFC 5780 §4.6).
 * @throws AbortedError when `signal` fires; STUN errors other than timeouts
 */
export async function measureMappingLifetime(options: LifetimeOptions): Promise<MappingLifetime> {
  const probe = new LifetimeProbe(options);
  try {
    return await probe.run();
  } finally {
    await probe.close();
  }
}

interface Socket {
  socket: dgram.Socket;
  client: StunUdpClient;
}

type Outcome = boolean | null;

class LifetimeProbe {
  readonly #options: LifetimeOptions;
  readonly #sockets: Socket[] = [];
  readonly #alive = new Set<number>();
  readonly #dead = new Set<number>();
  /** One per idle time: a probe longer than one that died is cancelled through it. */
  readonly #cancels = new Map<number, AbortController>();

  constructor(options: LifetimeOptions) {
    this.#options = options;
  }

  async run(): Promise<MappingLifetime> {
    const signal = this.#options.signal;
    if (signal?.aborted) throw new AbortedError('mapping lifetime: aborted');
    const idles = lifetimeIdles(this.#options.maxSeconds ?? DEFAULT_LIFETIME_MAX_SECONDS);
    const asker = await this.#open();
    let running = idles.length;
    await Promise.all(idles.map(async (idle) => {
      const cancel = new AbortController();
      this.#cancels.set(idle, cancel);
      const outcome = await this.#probe(idle, asker, signal ? AbortSignal.any([signal, cancel.signal]) : cancel.signal);
      running--;
      if (outcome === true) this.#alive.add(idle);
      if (outcome === false) {
        this.#dead.add(idle);
        for (const [other, controller] of this.#cancels) if (other > idle) controller.abort();
      }
      // A cancelled probe is news only when it was the last one running.
      if (signal?.aborted || (outcome === null && running > 0)) return;
      this.#options.onProgress?.({ ...this.#bracket(), final: running === 0 });
    }));
    if (signal?.aborted) throw new AbortedError('mapping lifetime: aborted');
    return this.#bracket();
  }

  #bracket(): MappingLifetime {
    const expired = this.#dead.size ? Math.min(...this.#dead) : null;
    // Survivals longer than a death are noise (the NAT restarted, a packet was lost): ignore them.
    const alive = [...this.#alive].filter((t) => expired === null || t < expired);
    return { aliveSeconds: alive.length ? Math.max(...alive) : null, expiredSeconds: expired };
  }

  /** One X(t): true if the mapping answered after `idle` s, false if not, null if unmeasured or cancelled. */
  async #probe(idle: number, asker: Socket, signal: AbortSignal): Promise<Outcome> {
    try {
      const holder = await this.#open();
      const answer = await this.#tryBinding(holder, this.#options.retransmission ?? DEFAULT_RETRANSMISSION, signal);
      const mapped = answer ? reflexiveAddress(answer.message) : undefined;
      if (!mapped) return null;
      await sleep(this.#options.clock ?? realClock, idle * 1000, signal);
      const onMessage = (data: Buffer): void => { if (isStunMessage(data)) heardNow(); };
      let heardNow!: () => void;
      const heard = new Promise<true>((resolve) => { heardNow = () => resolve(true); });
      holder.socket.on('message', onMessage);
      try {
        const asked = this.#tryBinding(asker, this.#options.silenceRetransmission ?? DEFAULT_SILENCE, signal, [
          { type: AttrType.ResponsePort, value: responsePort.encode(mapped.port) },
        ]).then(() => false as const);
        // The asker's transaction runs on after an answer was heard; its end (or abort) is not news.
        asked.catch(() => undefined);
        if (await Promise.race([heard, asked])) return true;
        // Silence means "expired" only if the server still answers (RFC 5780 §4.6 assumes it
        // does): a server that restarted or a path that broke would otherwise look like a NAT
        // with short mappings, and shrink the peer's keepalive to its floor.
        const control = await this.#tryBinding(asker, this.#options.retransmission ?? DEFAULT_RETRANSMISSION, signal);
        return control ? false : null;
      } finally {
        holder.socket.off('message', onMessage);
      }
    } catch (error) {
      if (signal.aborted) return null;
      throw error;
    }
  }

  async #tryBinding(probe: Socket, retransmission: RetransmissionOptions, signal: AbortSignal, attributes: { type: number; value: Uint8Array }[] = []): Promise<StunResponse | null> {
    try {
      return await probe.client.request(this.#options.server, { attributes, retransmission, signal });
    } catch (error) {
      if (NatpunchError.is(error) && error.code === 'ERR_STUN_TIMEOUT') return null;
      throw error;
    }
  }

  async #open(): Promise<Socket> {
    const socket = (this.#options.createSocket ?? dgram.createSocket)(this.#options.server.family === 6 ? 'udp6' : 'udp4');
    socket.on('error', () => undefined);
    socket.bind(0, this.#options.localAddress);
    await once(socket, 'listening');
    const entry = { socket, client: new StunUdpClient(socket, { clock: this.#options.clock }) };
    this.#sockets.push(entry);
    return entry;
  }

  async close(): Promise<void> {
    for (const controller of this.#cancels.values()) controller.abort();
    for (const { socket, client } of this.#sockets) {
      client.close();
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    }
  }
}
