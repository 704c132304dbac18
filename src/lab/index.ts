/**
 * The NAT lab's public surface: namespaces + nftables routers of every NAT kind, for tests,
 * the demo, benchmarks and `natpunch lab`.
 */

export { NAT_KINDS, natTruth, isNatKind, type NatKind, type NatTruth, type EndpointDependence, type Rfc3489Class, type PortAllocation } from './nat-kind.js';
export {
  createLab,
  withLab,
  destroyPrefix,
  destroyStaleLabs,
  labSupport,
  describePlan,
  type Lab,
  type LabOptions,
  type LabDescription,
  type Host,
  type Router,
  type RouterOptions,
  type ExecOptions,
  type ExecResult,
  type SpawnOptions,
  type ConntrackEntry,
  type ConntrackTuple,
} from './lab.js';
export { SERVER_ADDRESSES, SERVER_ADDRESSES6, CORE_ADDRESS, CORE_ADDRESS6 } from './topology.js';
export { ROUTER_COUNTERS, ROUTER_COUNTERS6, SEQUENTIAL_PORT_BASE, SEQUENTIAL_PORT_COUNT } from './nat-ruleset.js';
export { probeArgv, type ProbeRequest } from './probe.js';
export { startReflector, observeBehaviour, runProbe, JsonLines, REFLECTOR_PORTS, type Reflector, type ObservedBehaviour } from './observe.js';
export type { MiniupnpdHandle, MiniupnpdOptions } from './miniupnpd.js';
