/**
 * The relay's fast path between two of its own allocations: once the server has relayed a
 * ChannelData datagram from one client to another client of this server (two peers meeting on
 * one relay, the usual case), it installs a forwarding rule on the receiver the datagram came
 * in on (src/punch/udp-forward.ts), and the addon relays the rest of that flow without
 * JavaScript and without copying: the channel number is rewritten in place and the read is
 * sent on from the slab it was read into.
 *
 * Why it stays correct: a rule only repeats a decision the server just took for the same
 * client, channel and destination, and it holds no longer than everything that decision rested
 * on — both allocations, the sender's channel binding and permission, the receiver's
 * permission and channel binding — and never more than ROUTE_TTL_MS. After that the next
 * datagram goes through the server's checks again. Deleting either allocation removes its rules
 * at once. Allocations with a bandwidth limit never get one: their token bucket is spent per
 * datagram in JavaScript.
 *
 * What the rules forwarded is folded into the server's counters (`sync`), so stats and metrics
 * read the same as without the fast path.
 */
import type { ForwardCounts, ForwardTable } from '../punch/udp-forward.js';
import type { Allocation } from './allocation.js';

/** A rule is re-decided by the server at least this often, even when nothing it rests on expires sooner. */
export const ROUTE_TTL_MS = 2_000;

interface Route {
  readonly key: string;
  readonly table: ForwardTable;
  readonly index: number;
  readonly from: Allocation;
  readonly to: Allocation;
  /** When the rule stops matching (the server's clock). */
  expiresAt: number;
}

export class RelayFastPath {
  readonly #routes = new Map<string, Route>();
  readonly #byAllocation = new Map<Allocation, Set<Route>>();
  readonly #sweptAt = new WeakMap<ForwardTable, number>();
  readonly #fold: (route: { from: Allocation; to: Allocation }, counts: ForwardCounts) => void;

  constructor(fold: (route: { from: Allocation; to: Allocation }, counts: ForwardCounts) => void) {
    this.#fold = fold;
  }

  /** Rules installed now. */
  get size(): number {
    return this.#routes.size;
  }

  /**
   * The server has just relayed a datagram from `from`'s client on `channel` to `to`'s client
   * as `outChannel`; everything that allowed it holds until `validUntil`. Installs or renews
   * the rule for that flow when the sockets allow it.
   */
  offer(from: Allocation, channel: number, to: Allocation, outChannel: number, validUntil: number, now: number): void {
    const inPath = from.client.fastPath;
    const outPath = to.client.fastPath;
    if (inPath === undefined || outPath === undefined || from.bandwidth !== undefined || to.bandwidth !== undefined) return;
    const table = inPath.forwards;
    if (table === undefined) return;
    const key = `${from.key}#${channel}`;
    const route = this.#routes.get(key);
    // Live: the addon passed this read to JavaScript for a reason of its own (padding, say).
    if (route !== undefined && route.to === to && route.expiresAt > now) return;
    const outFd = outPath.outFd();
    if (outFd === undefined) return;
    const expiresAt = Math.min(validUntil, now + ROUTE_TTL_MS);
    if (expiresAt <= now) return;
    const rule = {
      from: from.client.remote, channel, outFd, outIpv6Socket: outPath.ipv6Socket,
      to: to.client.remote, outChannel, ttlMs: expiresAt - now,
    };
    if (route !== undefined && route.to === to && route.table === table) {
      if (table.renew(route.index, rule)) {
        route.expiresAt = expiresAt;
        return;
      }
    }
    if (route !== undefined) this.#remove(route);
    let index = table.add(rule);
    if (index === undefined) {
      // Full: rules whose flows went quiet hold their slots until re-decided; free this table's,
      // at most once per ROUTE_TTL_MS (with more live flows than slots, the rest stay slow).
      if ((this.#sweptAt.get(table) ?? -Infinity) + ROUTE_TTL_MS <= now) {
        this.#sweptAt.set(table, now);
        for (const old of [...this.#routes.values()]) if (old.table === table && old.expiresAt <= now) this.#remove(old);
        index = table.add(rule);
      }
    }
    if (index === undefined) return;
    const added: Route = { key, table, index, from, to, expiresAt };
    this.#routes.set(key, added);
    this.#link(from, added);
    this.#link(to, added);
  }

  /** An allocation is going: its rules, as sender or receiver, go first. */
  drop(allocation: Allocation): void {
    const routes = this.#byAllocation.get(allocation);
    if (routes === undefined) return;
    for (const route of [...routes]) this.#remove(route);
  }

  /** Folds what every rule forwarded since the last sync into the server's counters. */
  sync(): void {
    for (const route of this.#routes.values()) this.#fold(route, route.table.take(route.index));
  }

  close(): void {
    for (const route of [...this.#routes.values()]) this.#remove(route);
  }

  #remove(route: Route): void {
    route.table.remove(route.index);
    this.#fold(route, route.table.take(route.index));
    this.#routes.delete(route.key);
    for (const allocation of [route.from, route.to]) {
      const set = this.#byAllocation.get(allocation);
      set?.delete(route);
      if (set?.size === 0) this.#byAllocation.delete(allocation);
    }
  }

  #link(allocation: Allocation, route: Route): void {
    let set = this.#byAllocation.get(allocation);
    if (set === undefined) this.#byAllocation.set(allocation, (set = new Set()));
    set.add(route);
  }
}
