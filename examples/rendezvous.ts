/**
 * A rendezvous server for the examples: what `natpunch serve` runs, started in this process with
 * `createServer`, on loopback with ports the kernel picks. In real use the server runs on a
 * public host and peers get its URL (`natpunch serve --address 203.0.113.10` →
 * `ws://203.0.113.10:8080/`); set NATPUNCH_SERVER to such a URL and the examples use it instead
 * of starting their own.
 */
import { createServer } from 'natpunch';

export interface Rendezvous {
  /** The WebSocket URL peers register at: `PeerOptions.server`. */
  url: string;
  /** Stop the server (when the example started it). */
  stop(): Promise<void>;
}

export async function startRendezvous(): Promise<Rendezvous> {
  const given = process.env['NATPUNCH_SERVER'];
  if (given) return { url: given, stop: async () => undefined };

  // Port 0 everywhere: STUN/TURN and HTTP each get a free port, so examples never collide.
  const server = await createServer({ address: '127.0.0.1', port: 0, httpPort: 0 });
  return { url: server.rendezvousUrl!, stop: () => server.close() };
}
