/**
 * A scripted TURN server for client unit tests: a transport whose sent messages the test reads
 * and answers by hand, with the same long-term key a real server would derive. Time is a
 * FakeClock, so retransmissions and refreshes are checked to the millisecond.
 */

import { TurnClient, type TurnClientOptions, type TurnTransport } from '../../src/turn/index.js';
import {
  type Attribute, type StunMessage, AttrType, MessageClass, decodeMessage, encodeMessage, errorCode,
  lifetime, longTermKey, nonce, realm, xorMappedAddress, xorRelayedAddress,
} from '../../src/wire/index.js';
import { FakeClock } from '../transport/fake-clock.js';

export const USER = 'alice';
export const PASSWORD = 'secret';
export const REALM = 'natpunch.test';
export const KEY = longTermKey(USER, REALM, PASSWORD);
export const RELAYED = { family: 4, address: '192.0.2.7', port: 50000 } as const;
export const MAPPED = { family: 4, address: '198.51.100.9', port: 40000 } as const;

export class FakeTransport implements TurnTransport {
  readonly kind: 'udp' | 'tcp';
  readonly sent: Uint8Array[] = [];
  closed = false;
  #handler: ((bytes: Uint8Array) => void) | undefined;
  #waiters: (() => void)[] = [];
  #taken = 0;

  constructor(kind: 'udp' | 'tcp' = 'udp') {
    this.kind = kind;
  }

  send(bytes: Uint8Array): void {
    this.sent.push(bytes);
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  onReceive(handler: (bytes: Uint8Array) => void): void {
    this.#handler = handler;
  }

  close(): void {
    this.closed = true;
  }

  /** Hand bytes to the client as if the server sent them. */
  deliver(bytes: Uint8Array): void {
    this.#handler?.(bytes);
  }

  /** Resolves with the `count`-th message sent (1-based), at once if it already was. */
  async nth(count: number): Promise<StunMessage> {
    while (this.sent.length < count) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    return decodeMessage(this.sent[count - 1]!);
  }

  /** The first message sent that no `take()` has returned yet, waiting for it if need be. */
  async take(): Promise<StunMessage> {
    const message = await this.nth(this.#taken + 1);
    this.#taken++;
    return message;
  }
}

/** A response to `request` of `messageClass` with `attributes`, signed with `key` when given. */
export function reply(request: StunMessage, messageClass: MessageClass, attributes: Attribute[], key?: Uint8Array): Uint8Array {
  return encodeMessage({ method: request.method, messageClass, transactionId: request.transactionId, attributes }, key ? { integrity: { key } } : undefined);
}

/** An error response with ERROR-CODE (plus REALM and NONCE for the 401/438 challenges). */
export function errorReply(request: StunMessage, code: number, options: { nonce?: string; key?: Uint8Array } = {}): Uint8Array {
  const attributes: Attribute[] = [{ type: AttrType.ErrorCode, value: errorCode.encode({ code, reason: `test ${code}` }) }];
  if (options.nonce) attributes.push({ type: AttrType.Realm, value: realm.encode(REALM) }, { type: AttrType.Nonce, value: nonce.encode(options.nonce) });
  return reply(request, MessageClass.ErrorResponse, attributes, options.key);
}

export function allocateSuccess(request: StunMessage, seconds = 600, key: Uint8Array = KEY): Uint8Array {
  return reply(request, MessageClass.SuccessResponse, [
    { type: AttrType.XorRelayedAddress, value: xorRelayedAddress.encode(RELAYED, request.transactionId) },
    { type: AttrType.XorMappedAddress, value: xorMappedAddress.encode(MAPPED, request.transactionId) },
    { type: AttrType.Lifetime, value: lifetime.encode(seconds) },
  ], key);
}

/** A signed success response with no attributes (CreatePermission, ChannelBind) or just LIFETIME (Refresh). */
export function success(request: StunMessage, seconds?: number): Uint8Array {
  return reply(request, MessageClass.SuccessResponse, seconds === undefined ? [] : [{ type: AttrType.Lifetime, value: lifetime.encode(seconds) }], KEY);
}

export interface Scripted {
  client: TurnClient;
  transport: FakeTransport;
  clock: FakeClock;
}

/** A client with an allocation of `seconds`, made through the 401 challenge with nonce "n1". */
export async function allocated(options: { kind?: 'udp' | 'tcp'; seconds?: number; client?: TurnClientOptions } = {}): Promise<Scripted> {
  const clock = new FakeClock();
  const transport = new FakeTransport(options.kind);
  const client = new TurnClient(transport, { clock, ...options.client });
  const allocation = client.allocate({ username: USER, password: PASSWORD });
  transport.deliver(errorReply(await transport.take(), 401, { nonce: 'n1' }));
  transport.deliver(allocateSuccess(await transport.take(), options.seconds));
  await allocation;
  return { client, transport, clock };
}

/** Close a scripted client, answering its Refresh with LIFETIME 0 (the fake clock would never time it out). */
export async function closeScripted({ client, transport }: Pick<Scripted, 'client' | 'transport'>): Promise<void> {
  const closing = client.close();
  if (!transport.closed) {
    const refresh = await transport.nth(transport.sent.length);
    transport.deliver(success(refresh, 0));
  }
  await closing;
}

/** Let promise callbacks queued so far run (e.g. a refresh schedule restarting after its response). */
export function drain(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
