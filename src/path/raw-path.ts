/**
 * A raw path: one way of reaching the peer of a connection (a punched UDP 5-tuple, a TCP
 * connection, later a TURN channel), carrying frames (frame.ts) in both directions. The path
 * manager seals what goes over it and tells the stream which one to use.
 */
import type { DatagramPath } from '../transport/datagram-path.js';

/** What a path goes through, as the CLI and the library report it. */
export type PathKind = 'direct-udp' | 'direct-tcp' | 'relay';

export interface RawPath extends DatagramPath {
  readonly kind: PathKind;
  /** The peer's address on this path, "ip:port" ("[v6]:port"). */
  readonly remote: string;
  /** How this path was found: 'udp-hole-punch', 'tcp-simultaneous-open', 'rebinding', … */
  readonly technique: string;
  /** Whether the path still works at all (false once its socket failed or closed). */
  readonly open: boolean;
  /** Called once when the path dies on its own (the far end closed a TCP connection, …). */
  onClose(handler: (error?: Error) => void): void;
  close(): void;
}
