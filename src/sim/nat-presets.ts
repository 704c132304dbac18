/**
 * The lab's nine NAT kinds (src/lab/nat-kind.ts) as sim NAT behaviours, built to match what
 * src/lab/nat-ruleset.ts makes Linux do, not only what natTruth() says about it:
 * - the cone kinds and udp-blocked keep the internal port when it is free, like Linux's
 *   `snat` (RFC 4787 §4.2.1), and take a random one when another mapping holds it;
 * - eim-random-port and symmetric-random take uniform random ports in 1024–65535 (`fully-random`);
 * - symmetric-seq counts 40000, 40001, … per new mapping, shared by the whole NAT, wrapping
 *   after 1000 (SEQUENTIAL_PORT_BASE / _COUNT);
 * - symmetric-firewall does not translate and filters by address and port (conntrack);
 * - open is no NAT at all (undefined here: a plain router).
 * Mappings live 120 s idle unless given another timeout, as the lab's maps do.
 */
import { type NatKind, natTruth } from '../lab/nat-kind.js';
import { SEQUENTIAL_PORT_BASE, SEQUENTIAL_PORT_COUNT } from '../lab/nat-ruleset.js';
import type { NatBehaviour, PortAssignment } from './nat.js';

export const DEFAULT_MAPPING_TIMEOUT_MS = 120_000;

export interface PresetOptions {
  /** RFC 4787 §6 hairpinning (default false, as the lab's RouterOptions). */
  hairpin?: boolean;
  /** Idle mapping lifetime (default 120 s, the lab's when `udpTimeoutSeconds` is not set). */
  mappingTimeoutMs?: number;
}

const RANDOM_PORTS: PortAssignment = { kind: 'random', min: 1024, max: 65535 };

function portAssignment(kind: NatKind): PortAssignment {
  switch (kind) {
    case 'eim-random-port':
    case 'symmetric-random':
      return RANDOM_PORTS;
    case 'symmetric-seq':
      return { kind: 'sequential', base: SEQUENTIAL_PORT_BASE, delta: 1, count: SEQUENTIAL_PORT_COUNT };
    default:
      return { kind: 'preserving' };
  }
}

/** The behaviour of a lab router of `kind`, or undefined for `open` (no NAT, no filter). */
export function natPreset(kind: NatKind, options: PresetOptions = {}): NatBehaviour | undefined {
  if (kind === 'open') return undefined;
  const truth = natTruth(kind);
  return {
    translate: truth.natted,
    // udp-blocked has no UDP behaviour to observe; it is a port-restricted NAT that drops UDP.
    mapping: truth.mapping ?? 'endpoint-independent',
    filtering: truth.filtering ?? 'address-and-port-dependent',
    portAssignment: portAssignment(kind),
    hairpin: options.hairpin ?? false,
    mappingTimeoutMs: options.mappingTimeoutMs ?? DEFAULT_MAPPING_TIMEOUT_MS,
    inboundRefresh: false,
    blockUdp: kind === 'udp-blocked',
  };
}
