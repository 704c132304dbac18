/**
 * One STUN Binding over TCP (RFC 8489 §6.2.2), to tell a network that drops UDP from a server
 * that is not there: `natpunch check` reports "UDP blocked" only when the server answers here.
 */
import { StunTcpClient } from '../stun/tcp-client.js';
import type { TransportAddress } from '../wire/index.js';

export type TcpProbe = { ok: true } | { ok: false; reason: string };

export async function stunOverTcp(server: TransportAddress, timeoutMs: number): Promise<TcpProbe> {
  let client: StunTcpClient | undefined;
  try {
    client = await StunTcpClient.connect(server, { timeoutMs });
    await client.request({ timeoutMs });
    return { ok: true };
  } catch (error) {
    const cause = (error as Error & { cause?: NodeJS.ErrnoException }).cause;
    const reason = cause?.code === 'ECONNREFUSED' ? 'connection refused'
      : /timed out/.test((error as Error).message) ? `no answer within ${timeoutMs} ms`
        : `${(error as Error).message.replace(/^STUN over TCP: /, '')}`;
    return { ok: false, reason };
  } finally {
    client?.close();
  }
}
