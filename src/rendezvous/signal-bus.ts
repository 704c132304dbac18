/**
 * How one rendezvous node reaches a peer whose WebSocket another node holds. The registry says
 * which node holds a peer's socket; the bus carries the server's messages for that peer there.
 * Nodes trust each other (they share one Redis); peers still trust neither: everything a node
 * forwards is a signed object the other peer verifies (docs/decisions/004-rendezvous-protocol.md).
 *
 * Delivery is at most once and in order between two nodes (one publisher connection, one
 * subscriber): a message to a node that is not listening is lost, which `send` reports so the
 * sender can answer `peer-not-found` at once instead of waiting for the intent to expire.
 * @see docs/decisions/016-redis.md
 */
import type { Capability, ServerMessage, Signed } from './messages.js';
import { knownCapabilities } from './messages.js';
import { type NatClass, NAT_CLASSES } from './nat-class.js';

/** A peer's end of a session as another node sees it: enough to pair, time and address it. */
export interface RemotePeer {
  node: string;
  connectionId: string;
  peerId: string;
  version: number;
  capabilities: readonly Capability[];
  /** Its WebSocket's smoothed RTT at its node, ms (undefined: no sample yet), for punch timing. */
  srtt: number | undefined;
  /** What its registration proved about its network (for the metrics of either node). */
  nat?: NatClass;
}

export type BusMessage =
  /**
   * An intent (signed by the initiator) for `to`, a socket of the receiving node registered as
   * `peerId`, from `initiator` on the sending node.
   * The receiver keeps a copy of the pending session for `lifetimeMs` and forwards `incoming`.
   */
  | { type: 'incoming'; to: string; peerId: string; session: string; initiator: RemotePeer; intent: Signed; lifetimeMs: number }
  /**
   * A server message for the socket `to`. `from` is the other peer of the session, when the message
   * opens one here (a `punch`: the receiver keeps the punched session for trickling).
   */
  | { type: 'deliver'; to: string; message: ServerMessage; from?: RemotePeer }
  /** The other side ended `session` (its socket closed): drop the copy kept here. */
  | { type: 'end'; session: string }
  /** A newer registration of `peerId` took over on another node: close the socket `to` with `replaced`. */
  | { type: 'replaced'; to: string; peerId: string };

export interface SignalBus {
  /** This node's name: where messages for the sockets it holds are sent. */
  readonly node: string;
  /** Sends to `node`; resolves false when no node of that name is listening (the message is lost). */
  send(node: string, message: BusMessage): Promise<boolean>;
  /** Messages addressed to this node, each handed to `handler` in the order they arrived. */
  listen(handler: (message: BusMessage) => void): void;
  close(): Promise<void>;
}

/**
 * A bus inside one process: nodes made on one hub reach each other (tests run several
 * rendezvous servers in one process this way); a node alone on its hub reaches only itself,
 * which a single server never needs (its registry names only itself).
 */
export class InMemorySignalBus implements SignalBus {
  readonly node: string;
  readonly #hub: Map<string, InMemorySignalBus>;
  #handler: ((message: BusMessage) => void) | undefined;

  constructor(node: string, hub: Map<string, InMemorySignalBus> = new Map()) {
    this.node = node;
    this.#hub = hub;
    hub.set(node, this);
  }

  /** Another node on the same hub. */
  peer(node: string): InMemorySignalBus {
    return new InMemorySignalBus(node, this.#hub);
  }

  async send(node: string, message: BusMessage): Promise<boolean> {
    const target = this.#hub.get(node);
    if (!target || !target.#handler) return false;
    // A copy through JSON, as over Redis: no object is shared between nodes.
    const copy = parseBusMessage(JSON.stringify(message));
    // Asynchronous like a network hop, so no handler runs inside its sender's call stack.
    queueMicrotask(() => {
      const handler = target.#handler;
      if (handler) handler(copy!);
    });
    return true;
  }

  listen(handler: (message: BusMessage) => void): void {
    this.#handler = handler;
  }

  async close(): Promise<void> {
    this.#handler = undefined;
    if (this.#hub.get(this.node) === this) this.#hub.delete(this.node);
  }
}

/**
 * A bus message from its JSON text, or undefined for anything else. Other nodes are trusted,
 * but a malformed message (another version of natpunch on the same channel) must not throw
 * inside a subscriber: it is dropped. The server messages inside are not re-validated here: the
 * peer that receives them validates every message, and verifies every signed object.
 */
export function parseBusMessage(text: string): BusMessage | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(json)) return undefined;
  const str = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256;
  switch (json['type']) {
    case 'incoming': {
      const initiator = remotePeer(json['initiator']);
      const intent = json['intent'];
      const lifetimeMs = json['lifetimeMs'];
      if (!str(json['to']) || !str(json['peerId']) || !str(json['session']) || !initiator || !isObject(intent) || typeof intent['body'] !== 'string'
        || typeof intent['sig'] !== 'string' || typeof lifetimeMs !== 'number' || !(lifetimeMs > 0)) return undefined;
      return { type: 'incoming', to: json['to'], peerId: json['peerId'], session: json['session'], initiator, intent: { body: intent['body'], sig: intent['sig'] }, lifetimeMs };
    }
    case 'deliver': {
      const message = json['message'];
      const from = json['from'] === undefined ? undefined : remotePeer(json['from']);
      if (!str(json['to']) || !isObject(message) || typeof message['type'] !== 'string' || (json['from'] !== undefined && !from)) return undefined;
      return { type: 'deliver', to: json['to'], message: message as unknown as ServerMessage, ...(from ? { from } : {}) };
    }
    case 'end':
      return str(json['session']) ? { type: 'end', session: json['session'] } : undefined;
    case 'replaced':
      return str(json['to']) && str(json['peerId']) ? { type: 'replaced', to: json['to'], peerId: json['peerId'] } : undefined;
    default:
      return undefined;
  }
}

function remotePeer(value: unknown): RemotePeer | undefined {
  if (!isObject(value)) return undefined;
  const { node, connectionId, peerId, version, capabilities, srtt, nat } = value;
  if (typeof node !== 'string' || typeof connectionId !== 'string' || typeof peerId !== 'string' || typeof version !== 'number') return undefined;
  if (!Array.isArray(capabilities) || !capabilities.every((c) => typeof c === 'string')) return undefined;
  if (srtt !== undefined && srtt !== null && typeof srtt !== 'number') return undefined;
  return { node, connectionId, peerId, version, capabilities: knownCapabilities(capabilities as string[]), srtt: typeof srtt === 'number' ? srtt : undefined,
    ...(NAT_CLASSES.includes(nat as NatClass) ? { nat: nat as NatClass } : {}) };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
