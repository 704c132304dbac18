/**
 * A one-peer NAT on loopback: the peer behind it sends to `inside`; the forwarder relays to the
 * outside world from its `outside` socket and back. rebind() replaces the outside socket with one
 * on a new port, as a NAT that drops a mapping and makes a new one: the far side then sees the
 * same peer's datagrams from a new address.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { once } from '../support/wait.js';
import type { TransportAddress } from '../../src/wire/index.js';

export interface Forwarder {
  /** Where the peer behind the NAT sends. */
  readonly inside: TransportAddress;
  /** The peer's address as the far side sees it now. */
  readonly outside: TransportAddress;
  rebind(): Promise<void>;
  close(): void;
}

async function bound(): Promise<Socket> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return socket;
}

const addressOf = (socket: Socket): TransportAddress => ({ family: 4, address: '127.0.0.1', port: socket.address().port });

/** `peer`: the one address inside; `far`: the one outside address it talks to (a static mapping, open both ways). */
export async function createForwarder(peer: TransportAddress, far: TransportAddress): Promise<Forwarder> {
  const inside = await bound();
  let outside = await bound();
  const fromFar = (data: Buffer, from: RemoteInfo): void => {
    if (from.port === far.port) inside.send(data, peer.port, peer.address);
  };
  outside.on('message', fromFar);
  inside.on('message', (data, from) => {
    if (from.port === peer.port) outside.send(data, far.port, far.address);
  });
  return {
    inside: addressOf(inside),
    get outside() {
      return addressOf(outside);
    },
    async rebind() {
      const next = await bound();
      next.on('message', fromFar);
      const old = outside;
      outside = next;
      old.close();
    },
    close() {
      inside.close();
      outside.close();
    },
  };
}
