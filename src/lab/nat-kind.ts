/**
 * The kinds of NAT the lab can build, and the behaviour each one is built to have.
 *
 * The words are RFC 4787's (mapping and filtering behaviour, port assignment), RFC 5780's
 * (the tests that observe them) and RFC 3489's older classes. `natTruth` is the lab's ground
 * truth: a test that classifies a lab router must get exactly these answers.
 *
 * @see RFC 4787 §4.1 (mapping), §4.3 (filtering), §4.1 REQ-3 (port preservation)
 * @see RFC 5780 §4.3–4.4 (behaviour discovery)
 * @see RFC 3489 §5, §10.1 (classic classification)
 */

import { LabError } from '../errors.js';

export type NatKind =
  | 'full-cone'
  | 'restricted-cone'
  | 'port-restricted'
  | 'eim-random-port'
  | 'symmetric-random'
  | 'symmetric-seq'
  | 'symmetric-firewall'
  | 'udp-blocked'
  | 'open';

export const NAT_KINDS: readonly NatKind[] = Object.freeze([
  'full-cone',
  'restricted-cone',
  'port-restricted',
  'eim-random-port',
  'symmetric-random',
  'symmetric-seq',
  'symmetric-firewall',
  'udp-blocked',
  'open',
] as const);

/** RFC 4787 §4.1 and §5: how a NAT chooses or admits by the remote endpoint. */
export type EndpointDependence = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent';

export type Rfc3489Class =
  | 'open-internet'
  | 'full-cone'
  | 'restricted-cone'
  | 'port-restricted-cone'
  | 'symmetric'
  | 'symmetric-udp-firewall'
  | 'udp-blocked';

export type PortAllocation = 'preserving' | 'sequential' | 'random';

/** The behaviour a lab router of one kind is built to have. */
export interface NatTruth {
  /**
   * Whether the router translates addresses. `udp-blocked` translates TCP (it is a NAT),
   * though a UDP-based check cannot see that.
   */
  natted: boolean;
  /** RFC 4787 §4.1 mapping behaviour for UDP; null when UDP does not pass. */
  mapping: EndpointDependence | null;
  /** RFC 4787 §5 filtering behaviour for UDP; null when UDP does not pass. */
  filtering: EndpointDependence | null;
  /** The RFC 3489 §5 class. */
  rfc3489: Rfc3489Class;
  /** How the external port of a new mapping is chosen; null when UDP does not pass. */
  portAllocation: PortAllocation | null;
}

const truths: Readonly<Record<NatKind, Readonly<NatTruth>>> = {
  'full-cone': {
    natted: true,
    mapping: 'endpoint-independent',
    filtering: 'endpoint-independent',
    rfc3489: 'full-cone',
    portAllocation: 'preserving',
  },
  'restricted-cone': {
    natted: true,
    mapping: 'endpoint-independent',
    filtering: 'address-dependent',
    rfc3489: 'restricted-cone',
    portAllocation: 'preserving',
  },
  'port-restricted': {
    natted: true,
    mapping: 'endpoint-independent',
    filtering: 'address-and-port-dependent',
    rfc3489: 'port-restricted-cone',
    portAllocation: 'preserving',
  },
  'eim-random-port': {
    natted: true,
    mapping: 'endpoint-independent',
    filtering: 'address-and-port-dependent',
    rfc3489: 'port-restricted-cone',
    portAllocation: 'random',
  },
  'symmetric-random': {
    natted: true,
    mapping: 'address-and-port-dependent',
    filtering: 'address-and-port-dependent',
    rfc3489: 'symmetric',
    portAllocation: 'random',
  },
  'symmetric-seq': {
    natted: true,
    mapping: 'address-and-port-dependent',
    filtering: 'address-and-port-dependent',
    rfc3489: 'symmetric',
    portAllocation: 'sequential',
  },
  'symmetric-firewall': {
    natted: false,
    mapping: 'endpoint-independent',
    filtering: 'address-and-port-dependent',
    rfc3489: 'symmetric-udp-firewall',
    portAllocation: 'preserving',
  },
  'udp-blocked': {
    natted: true,
    mapping: null,
    filtering: null,
    rfc3489: 'udp-blocked',
    portAllocation: null,
  },
  open: {
    natted: false,
    mapping: 'endpoint-independent',
    filtering: 'endpoint-independent',
    rfc3489: 'open-internet',
    portAllocation: 'preserving',
  },
};

/** The behaviour `kind` is built to have (a fresh copy the caller may change). */
export function natTruth(kind: NatKind): NatTruth {
  const truth = truths[kind];
  if (truth === undefined) throw new LabError(`natTruth: unknown NAT kind ${JSON.stringify(kind)}, expected one of ${NAT_KINDS.join(', ')}`);
  return { ...truth };
}

export function isNatKind(value: unknown): value is NatKind {
  return typeof value === 'string' && (NAT_KINDS as readonly string[]).includes(value);
}

/** Whether clients behind a router of this kind get private addresses and are translated. */
export function translatesAddresses(kind: NatKind): boolean {
  return kind !== 'open' && kind !== 'symmetric-firewall';
}
