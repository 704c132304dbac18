/**
 * NAT behaviour vocabulary (RFC 4787 §4.1, §5) and the RFC 3489 class it implies.
 */
/** A NAT's mapping or filtering behaviour, in RFC 4787's words. */
export type Behaviour = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent';

/** The classic RFC 3489 NAT class (`natpunch check`'s `rfc3489`). */
export type Rfc3489Class =
  | 'open-internet' | 'full-cone' | 'restricted-cone' | 'port-restricted-cone'
  | 'symmetric' | 'symmetric-udp-firewall' | 'udp-blocked';

/** How a NAT picks external ports: keeps the local port, counts up, or at random. */
export type PortAllocation = 'preserving' | 'sequential' | 'random';

/**
 * The classic RFC 3489 §10.1 class from RFC 5780's two measurements. RFC 3489's four NAT
 * types are exactly the EIM NATs split by filtering, plus "symmetric" for every other mapping.
 * Returns null when a measurement is missing (e.g. the server has no alternate address).
 */
export function rfc3489Class(natted: boolean, mapping: Behaviour | null, filtering: Behaviour | null): Rfc3489Class | null {
  if (!natted) {
    if (filtering === null) return null;
    return filtering === 'endpoint-independent' ? 'open-internet' : 'symmetric-udp-firewall';
  }
  if (mapping === null) return null;
  if (mapping !== 'endpoint-independent') return 'symmetric';
  switch (filtering) {
    case 'endpoint-independent': return 'full-cone';
    case 'address-dependent': return 'restricted-cone';
    case 'address-and-port-dependent': return 'port-restricted-cone';
    default: return null;
  }
}

/**
 * Classify how a NAT picks external ports, from (local port, mapped port) pairs of fresh
 * sockets probed one after another toward the same server endpoint.
 * - preserving: every mapped port equals its local port;
 * - sequential: consecutive mapped ports differ by the same small delta (most of the time:
 *   other hosts behind the same NAT may take a port in between);
 * - random: anything else.
 */
export function classifyPortAllocation(samples: { local: number; mapped: number }[]): { allocation: PortAllocation; delta?: number } | null {
  if (samples.length < 3) return null;
  if (samples.every((s) => s.local === s.mapped)) return { allocation: 'preserving' };
  const deltas: number[] = [];
  for (let i = 1; i < samples.length; i++) deltas.push(samples[i]!.mapped - samples[i - 1]!.mapped);
  const counts = new Map<number, number>();
  for (const d of deltas) counts.set(d, (counts.get(d) ?? 0) + 1);
  const [delta, count] = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]!;
  // A delta seen in at least 3/4 of the steps, small and non-zero, is a counter, not chance:
  // with random 16-bit ports even two equal deltas in a row are ~1/65536 likely.
  if (delta !== 0 && Math.abs(delta) <= MAX_SEQUENTIAL_DELTA && count >= Math.ceil(deltas.length * 0.75)) {
    return { allocation: 'sequential', delta };
  }
  return { allocation: 'random' };
}

/** Largest per-flow step still called "sequential": NATs seen in the wild step by 1, 2 or a few. */
export const MAX_SEQUENTIAL_DELTA = 16;
