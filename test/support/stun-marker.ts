/**
 * Whether a UDP STUN server answered a request, without waiting for silence: send the request,
 * then a plain Binding as a marker from the same socket. The server reads and answers datagrams
 * from one source in order, so whatever arrives before the marker's answer is the answer to the
 * request, and nothing arriving means no answer (as long as the answer would come from the
 * socket the request went to: no CHANGE-REQUEST, no RESPONSE-PORT elsewhere).
 */
import type dgram from 'node:dgram';
import { type TransportAddress, Method, MessageClass, decodeMessage, encodeMessage, isStunMessage, newTransactionId } from '../../src/wire/index.js';
import { within } from './wait.js';

/** The datagrams `socket` received in answer to `request` (before the marker's answer). */
export async function answersBeforeMarker(socket: dgram.Socket, request: Uint8Array, to: TransportAddress): Promise<Buffer[]> {
  const marker = Buffer.from(newTransactionId());
  const seen: Buffer[] = [];
  let onMessage: ((data: Buffer) => void) | undefined;
  const done = new Promise<void>((resolve) => {
    onMessage = (data: Buffer): void => {
      if (isStunMessage(data) && Buffer.from(decodeMessage(data).transactionId).equals(marker)) resolve();
      else seen.push(data);
    };
    socket.on('message', onMessage);
  });
  try {
    socket.send(request, to.port, to.address);
    socket.send(encodeMessage({ method: Method.Binding, messageClass: MessageClass.Request, transactionId: marker, attributes: [] }), to.port, to.address);
    await within(done, 'the marker Binding\'s answer');
  } finally {
    socket.off('message', onMessage!);
  }
  return seen;
}
