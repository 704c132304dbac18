import {
  type Attribute, type StunMessage, type TransportAddress, AttrType, Method, MessageClass, encodeMessage, getAttribute,
  xorMappedAddress, mappedAddress, changeRequest, responsePort, padding, software, errorCode, unknownAttributes,
  isComprehensionRequired, RFC3489_CHANGED_ADDRESS, RFC3489_SOURCE_ADDRESS,
} from '../wire/index.js';

/**
 * The Binding method, answered statelessly: everything the response needs is in the request and
 * in where it arrived. Pure: no sockets here (STYLE §1); the server only sends what this returns.
 * @see RFC 8489 §12 (Binding), RFC 5780 §6 (behaviour discovery)
 */

export interface BindingContext {
  /** Where the request arrived (the server's own address and port). */
  local: TransportAddress;
  /** The request's source, i.e. the client's server-reflexive transport address. */
  remote: TransportAddress;
  transport: 'udp' | 'tcp';
  /**
   * The other address and port of an RFC 5780 server, relative to `local`: the IP that is not
   * `local.address` and the port that is not `local.port`. Absent when no alternate is configured.
   */
  other?: TransportAddress;
  /** SOFTWARE to advertise (included only when it fits the response budget). */
  software?: string;
}

export interface BindingReply {
  bytes: Uint8Array;
  /** Which of the server's sockets must send it, relative to the one that received the request (RFC 5780 §6.1). */
  changeIp: boolean;
  changePort: boolean;
  /** Where to send it: the source, or the source IP with the port from RESPONSE-PORT (RFC 5780 §7.5). */
  to: TransportAddress;
}

/** Attribute types a Binding request may carry that this server understands or may ignore safely. */
const understood = new Set<number>(Object.values(AttrType).filter((v): v is number => typeof v === 'number'));

/**
 * Answer a Binding request, or return null when it must be dropped silently.
 *
 * Amplification bound: an unauthenticated UDP request never gets a response larger than
 * max(request size, the essential attributes): XOR-MAPPED-ADDRESS, and for RFC 5780 servers
 * OTHER-ADDRESS and RESPONSE-ORIGIN (plus FINGERPRINT when the request had one). SOFTWARE
 * and PADDING are added only within the request's own size. See docs/decisions/001-stun-amplification.md.
 */
export function answerBinding(request: StunMessage, ctx: BindingContext): BindingReply | null {
  if (request.method !== Method.Binding || request.messageClass !== MessageClass.Request) return null;
  // RFC 8489 §11: a classic (RFC 3489) client gets its cookie field back as part of its id.
  const cookie = request.rfc3489?.cookie;
  const reply = (attributes: Attribute[], cls: MessageClass, change = { changeIp: false, changePort: false }, to = ctx.remote, fingerprint = false): BindingReply => ({
    bytes: encodeMessage({ method: Method.Binding, messageClass: cls, transactionId: request.transactionId, attributes, cookie }, { fingerprint }),
    ...change,
    to,
  });
  // Over UDP an error response is never larger than its request (decision 001): the source may
  // be spoofed, and an error is no more use to a victim than a success. The reason phrase is
  // cut to the room left; when even ERROR-CODE without one (and, for 420, UNKNOWN-ATTRIBUTES,
  // which RFC 8489 §14.9 requires) is larger, no answer at all. TCP's source is not spoofed.
  const errorBudget = ctx.transport === 'tcp' ? Infinity : request.raw.byteLength;
  const fail = (code: number, reason: string, extra: Attribute[] = []): BindingReply | null => {
    const bare = 20 + 4 + 4 + extra.reduce((n, a) => n + 4 + pad4(a.value.byteLength), 0);
    if (bare > errorBudget) return null;
    const phrase = fitReason(reason, errorBudget - bare);
    return reply([{ type: AttrType.ErrorCode, value: errorCode.encode({ code, reason: phrase }) }, ...extra], MessageClass.ErrorResponse);
  };

  // RFC 8489 §6.3.1.1: unknown comprehension-required attributes -> 420 listing them.
  const unknown = [...new Set(request.attributes.map((a) => a.type).filter((t) => isComprehensionRequired(t) && !understood.has(t)))];
  if (unknown.length > 0) {
    return fail(420, 'Unknown Attribute', [{ type: AttrType.UnknownAttributes, value: unknownAttributes.encode(unknown) }]);
  }

  // RFC 5780 §6.1: CHANGE-REQUEST without an alternate address -> 420; it means nothing over TCP either.
  let change = { changeIp: false, changePort: false };
  const changeValue = getAttribute(request, AttrType.ChangeRequest);
  if (changeValue) {
    try {
      change = changeRequest.decode(changeValue);
    } catch (error) {
      return fail(400, `Bad Request: ${(error as Error).message}`);
    }
    if ((change.changeIp || change.changePort) && (!ctx.other || ctx.transport !== 'udp')) {
      return fail(420, ctx.other ? 'CHANGE-REQUEST needs UDP' : 'no alternate address for CHANGE-REQUEST', [
        { type: AttrType.UnknownAttributes, value: unknownAttributes.encode([AttrType.ChangeRequest]) },
      ]);
    }
  }

  let to = ctx.remote;
  const portValue = getAttribute(request, AttrType.ResponsePort);
  if (portValue && ctx.transport === 'udp') {
    let port: number;
    try {
      port = responsePort.decode(portValue);
    } catch (error) {
      return fail(400, `Bad Request: ${(error as Error).message}`);
    }
    if (port === 0) return fail(400, 'Bad Request: RESPONSE-PORT 0');
    to = { ...ctx.remote, port };
  }

  const origin: TransportAddress = ctx.other
    ? {
        family: ctx.local.family,
        address: change.changeIp ? ctx.other.address : ctx.local.address,
        port: change.changePort ? ctx.other.port : ctx.local.port,
      }
    : ctx.local;
  const attributes: Attribute[] = [];
  if (request.rfc3489) {
    // RFC 8489 §11: MAPPED-ADDRESS instead of XOR-MAPPED-ADDRESS; and the RFC 3489 names of
    // OTHER-ADDRESS and RESPONSE-ORIGIN (§11.2.3, §11.2.5), which classic NAT-type clients
    // need to run their tests (RFC 5780 §7.3-7.4 keeps the same meaning under new codes).
    attributes.push({ type: AttrType.MappedAddress, value: mappedAddress.encode(ctx.remote) });
    if (ctx.other) {
      attributes.push({ type: RFC3489_SOURCE_ADDRESS, value: mappedAddress.encode(origin) });
      attributes.push({ type: RFC3489_CHANGED_ADDRESS, value: mappedAddress.encode(ctx.other) });
    }
  } else {
    attributes.push({ type: AttrType.XorMappedAddress, value: xorMappedAddress.encode(ctx.remote, request.transactionId) });
    if (ctx.other) {
      // OTHER-ADDRESS names the address that differs in both IP and port from the one the request reached.
      attributes.push({ type: AttrType.OtherAddress, value: mappedAddress.encode(ctx.other) });
      attributes.push({ type: AttrType.ResponseOrigin, value: mappedAddress.encode(origin) });
    }
  }
  // RFC 3489 has no FINGERPRINT (and a classic client would not know it).
  const fingerprint = !request.rfc3489 && getAttribute(request, AttrType.Fingerprint) !== undefined;

  // Optional attributes only within the request's own size (TCP is not spoofable, so no bound there).
  const budget = ctx.transport === 'tcp' ? Infinity : request.raw.byteLength;
  let size = 20 + attributes.reduce((n, a) => n + 4 + pad4(a.value.byteLength), 0) + (fingerprint ? 8 : 0);
  if (ctx.software) {
    const value = software.encode(ctx.software);
    if (size + 4 + pad4(value.byteLength) <= budget) {
      attributes.push({ type: AttrType.Software, value });
      size += 4 + pad4(value.byteLength);
    }
  }
  const paddingValue = getAttribute(request, AttrType.Padding);
  if (paddingValue) {
    // RFC 5780 §7.6: pad the response like the request, but never past the request's size.
    const wanted = Math.min(safePadding(paddingValue), budget - size - 4);
    if (wanted > 0) attributes.push({ type: AttrType.Padding, value: padding.encode(wanted & ~3) });
  }
  return reply(attributes, MessageClass.SuccessResponse, change, to, fingerprint);
}

/** The longest prefix of `reason` whose UTF-8 bytes, padded to 4, fit in `room` bytes (RFC 8489 §14.8). */
function fitReason(reason: string, room: number): string {
  if (room === Infinity) return reason;
  let phrase = reason.slice(0, Math.max(0, room));
  while (phrase.length > 0 && pad4(Buffer.byteLength(phrase)) > room) phrase = phrase.slice(0, -1);
  return phrase;
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}

function safePadding(value: Uint8Array): number {
  try {
    return padding.decode(value);
  } catch {
    return 0;
  }
}
