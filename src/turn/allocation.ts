/**
 * One allocation: a relayed transport address (a UDP socket on the server) tied to the client's
 * 5-tuple, with the permissions and channel bindings that decide which peers may use it. State
 * only; the server decides what may be created and answers the client.
 * @see RFC 8656 §2.2, §3.4 (permissions), §3.5 (channels), §6
 */

import type dgram from 'node:dgram';
import type { TransportAddress } from '../wire/index.js';
import type { TokenBucket } from '../token-bucket.js';
import type { TurnClientSide } from './five-tuple.js';
import { AddressedSender } from '../punch/udp-batch.js';

/** Permissions last 300 s unless refreshed. @see RFC 8656 §3.4 */
export const PERMISSION_LIFETIME_MS = 300_000;
/** Channel bindings last 600 s unless refreshed. @see RFC 8656 §3.5 */
export const CHANNEL_LIFETIME_MS = 600_000;
/**
 * After a binding expires, neither its channel nor its peer may be bound to anything else for
 * 5 minutes (so late packets on the old binding are not taken for the new one). @see RFC 8656 §12
 */
export const CHANNEL_REUSE_DELAY_MS = 300_000;

export interface ChannelBinding {
  channel: number;
  peer: TransportAddress;
  peerKey: string;
  expiresAt: number;
}

export function peerKey(peer: TransportAddress): string {
  return `${peer.address}|${peer.port}`;
}

export class Allocation {
  readonly key: string;
  readonly client: TurnClientSide;
  readonly username: string;
  readonly integrityKey: Uint8Array;
  readonly relayed: TransportAddress;
  readonly socket: dgram.Socket;
  /** Datagrams to peers leave through here (copied as queued, one sendmmsg per batch where the addon is built). */
  readonly sender: AddressedSender;
  readonly bandwidth: TokenBucket | undefined;
  expiresAt: number;
  /** Peer IP (not port: a permission covers every port of an IP) → expiry. */
  readonly permissions = new Map<string, number>();
  readonly channels = new Map<number, ChannelBinding>();
  readonly channelByPeer = new Map<string, ChannelBinding>();
  /** The last Allocate transaction answered and its bytes: a retransmission gets the same answer. @see RFC 8656 §7.2 */
  allocateTransaction: { id: string; response: Uint8Array } | undefined;
  bytesFromClient = 0;
  bytesToClient = 0;
  dropped = 0;

  constructor(init: { key: string; client: TurnClientSide; username: string; integrityKey: Uint8Array; relayed: TransportAddress; socket: dgram.Socket; expiresAt: number; bandwidth?: TokenBucket; native?: boolean }) {
    this.key = init.key;
    this.client = init.client;
    this.username = init.username;
    this.integrityKey = init.integrityKey;
    this.relayed = init.relayed;
    this.socket = init.socket;
    this.sender = new AddressedSender(init.socket, { native: init.native });
    this.expiresAt = init.expiresAt;
    this.bandwidth = init.bandwidth;
  }

  hasPermission(ip: string, now: number): boolean {
    const until = this.permissions.get(ip);
    return until !== undefined && until > now;
  }

  permit(ip: string, now: number): void {
    this.permissions.set(ip, now + PERMISSION_LIFETIME_MS);
  }

  /** The live binding of a channel number, if any. */
  channel(channel: number, now: number): ChannelBinding | undefined {
    const binding = this.channels.get(channel);
    return binding && binding.expiresAt > now ? binding : undefined;
  }

  /** The live channel bound to a peer, if any. */
  channelFor(peer: string, now: number): ChannelBinding | undefined {
    const binding = this.channelByPeer.get(peer);
    return binding && binding.expiresAt > now ? binding : undefined;
  }

  /** channelFor(peerKey(address, port)) without making the key while the same peer keeps sending. */
  channelForAddress(address: string, port: number, now: number): ChannelBinding | undefined {
    const last = this.#lastBinding;
    const binding = last !== undefined && last.peer.port === port && last.peer.address === address && this.channelByPeer.get(last.peerKey) === last
      ? last
      : this.channelByPeer.get(peerKey({ family: 4, address, port }));
    this.#lastBinding = binding;
    return binding && binding.expiresAt > now ? binding : undefined;
  }

  #lastBinding: ChannelBinding | undefined;

  /**
   * Binds or refreshes `channel` to `peer`; `undefined` on success, or why not: the channel is
   * (or was, within the reuse delay) bound to another peer, or the peer to another channel.
   * @see RFC 8656 §11.2
   */
  bind(channel: number, peer: TransportAddress, now: number): string | undefined {
    const key = peerKey(peer);
    const byChannel = this.channels.get(channel);
    const byPeer = this.channelByPeer.get(key);
    if (byChannel && byChannel.peerKey !== key) return `channel 0x${channel.toString(16)} is bound to another peer`;
    if (byPeer && byPeer.channel !== channel) return `the peer is bound to channel 0x${byPeer.channel.toString(16)}`;
    const binding = byChannel ?? { channel, peer, peerKey: key, expiresAt: 0 };
    binding.expiresAt = now + CHANNEL_LIFETIME_MS;
    this.channels.set(channel, binding);
    this.channelByPeer.set(key, binding);
    this.permit(peer.address, now);
    return undefined;
  }

  /** Forgets expired permissions, and bindings past their reuse delay. */
  sweep(now: number): void {
    for (const [ip, until] of this.permissions) if (until <= now) this.permissions.delete(ip);
    for (const [channel, binding] of this.channels) {
      if (binding.expiresAt + CHANNEL_REUSE_DELAY_MS <= now) {
        this.channels.delete(channel);
        this.channelByPeer.delete(binding.peerKey);
      }
    }
  }

  close(): void {
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }
}
