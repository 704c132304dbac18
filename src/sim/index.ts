/**
 * The in-process network (docs/sim.md): virtual time, RFC 4787 NATs, links, hosts and
 * dgram-compatible sockets, the lab topology, and the punching scenario bench/ measures.
 */
export { VirtualClock, VirtualTimer, type VirtualClockOptions, type RunOptions } from './virtual-clock.js';
export { Prng } from './prng.js';
export { Nat, endpointKey, type NatBehaviour, type EndpointDependence, type PortAssignment, type Endpoint, type MappingView, type Protocol } from './nat.js';
export { natPreset, DEFAULT_MAPPING_TIMEOUT_MS, type PresetOptions } from './nat-presets.js';
export { Link, type LinkOptions } from './link.js';
export { Network, Router, Host, EPHEMERAL_PORTS, type Datagram, type DropReason, type TraceEvent, type NetworkOptions } from './network.js';
export { SimUdpSocket, createSimSocket } from './socket.js';
export { SimTcpSocket, SimTcpServer, createSimTcpNet, type SimConnectOptions } from './tcp-socket.js';
export { TcpStack } from './tcp-stack.js';
export { TcpConntrack, type FlowState, type FlowView, type TcpVerdict } from './tcp-conntrack.js';
export { type TcpHeader, type TcpFlags, DEFAULT_TTL } from './tcp-segment.js';
export { createSimLab, startSimStunServer, STUN_PORT, type SimLab, type SimLabOptions, type SimRouterOptions } from './topology.js';
export { simTtlPriming } from './tcp-ttl.js';
export { runConnect, RELAY_SERVER_ROUND_TRIPS, type ConnectScenario, type ConnectOutcome, type ConnectSide, type PathKind } from './connect-scenario.js';
export { runUdpPunch, timeToNomination, type UdpPunchScenario, type UdpPunchOutcome, type PunchSide } from './punch-scenario.js';
