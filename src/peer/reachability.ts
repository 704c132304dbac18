/**
 * The peer's side of the server's dial-back (src/rendezvous/dial-back.ts): it answers the
 * server's probes carrying this registration's hello token, and remembers that they arrived.
 * A peer counts as directly reachable over a transport only when it saw the probe itself AND
 * the server reported success: neither a stray packet nor the server's word alone makes it skip
 * punching. (A hostile server can only make a peer wait instead of punch — it can always refuse
 * service anyway — never aim it anywhere: dial targets come only from signed candidates.)
 */
import type { Reachability } from '../rendezvous/messages.js';
import type { UdpMux } from '../punch/udp-mux.js';
import {
  type StunMessage, type TransportAddress, AttrType, Method, MessageClass, decodeMessage, encodeMessage, getAttribute, isStunMessage,
  username as usernameCodec, xorMappedAddress,
} from '../wire/index.js';

export class DialBackResponder {
  #token: string | undefined;
  #udpSeen = false;
  #tcpSeen = false;
  readonly #unsubscribe: () => void;

  constructor(readonly mux: UdpMux) {
    this.#unsubscribe = mux.onStun((data, from) => this.#onStun(data, from));
  }

  /** The hello token of the current registration: only probes carrying it are answered. */
  expect(token: string): void {
    this.#token = token;
    this.#udpSeen = this.#tcpSeen = false;
  }

  /** A TCP dial-back preamble's token arrived on the reversal listener: true if it is ours. */
  tcpProbe(token: Buffer): boolean {
    if (this.#token === undefined || !token.equals(Buffer.from(this.#token, 'base64url'))) return false;
    this.#tcpSeen = true;
    return true;
  }

  /** This peer's reachability: what it saw, confirmed by what the server reported. */
  reachability(server: Reachability | null): Reachability {
    return { udp: this.#udpSeen && !!server?.udp, tcp: this.#tcpSeen && !!server?.tcp };
  }

  close(): void {
    this.#unsubscribe();
  }

  /** A Binding request with USERNAME = token: answer with XOR-MAPPED-ADDRESS (RFC 8489 §6.3.1). */
  #onStun(data: Buffer, from: TransportAddress): boolean {
    if (this.#token === undefined || !isStunMessage(data)) return false;
    let message: StunMessage;
    try {
      message = decodeMessage(data);
    } catch {
      return false;
    }
    if (message.method !== Method.Binding || message.messageClass !== MessageClass.Request) return false;
    const user = getAttribute(message, AttrType.Username);
    if (!user || !Buffer.from(user).equals(Buffer.from(usernameCodec.encode(this.#token)))) return false;
    this.#udpSeen = true;
    this.mux.send(encodeMessage({
      method: Method.Binding, messageClass: MessageClass.SuccessResponse, transactionId: message.transactionId,
      attributes: [{ type: AttrType.XorMappedAddress, value: xorMappedAddress.encode(from, message.transactionId) }],
    }, { fingerprint: true }), from);
    return true;
  }
}
