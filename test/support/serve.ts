import { natpunch } from './cli.js';
import { ProcessOutput, stopProcess, type Spawner } from './process.js';

export interface RunningServe {
  output: ProcessOutput;
  /**
   * Its STUN endpoints as the ready line lists them: primary first, then (with an alternate
   * address) primary IP + alternate port, alternate IP + primary port, alternate IP + port.
   */
  endpoints: string[];
  /** Where a plain Binding goes: the primary address and port. */
  primary: string;
  /** The endpoint differing from the primary in both address and port: RFC 5780's OTHER-ADDRESS. */
  other: string | null;
  stop(): Promise<void>;
}

/** `natpunch serve --address A --alt-address B ...extra` in `host`, resolved once it logs ready. */
export async function startServe(host: Spawner, address: string, altAddress: string, extra: readonly string[] = []): Promise<RunningServe> {
  const output = new ProcessOutput(host.spawn(natpunch('serve', '--address', address, '--alt-address', altAddress, ...extra)), 'natpunch serve');
  const stop = (): Promise<void> => stopProcess(output.child);
  let ready: string;
  try {
    [ready] = (await output.waitFor([/ready/])) as [string];
  } catch (error) {
    await stop();
    throw error;
  }
  // "ready: STUN on udp+tcp A B C D (...); rendezvous ws://..." — only the STUN list counts.
  const stunList = /STUN on \S+((?:\s+\d{1,3}(?:\.\d{1,3}){3}:\d{1,5})+)/.exec(ready)?.[1] ?? '';
  const endpoints = [...stunList.matchAll(new RegExp(ENDPOINT_PATTERN, 'g'))].map((m) => m[1]!);
  const primary = endpoints[0];
  if (primary === undefined) {
    await stop();
    throw new Error(`natpunch serve: its ready line names no STUN endpoint: ${ready}`);
  }
  const other = endpoints.find((e) => endpointIp(e) !== endpointIp(primary) && endpointPort(e) !== endpointPort(primary)) ?? null;
  return { output, endpoints, primary, other, stop };
}

/** An IPv4 "ip:port" as tools print it, as one capture group (regex source text). */
export const ENDPOINT_PATTERN = String.raw`(\d{1,3}(?:\.\d{1,3}){3}:\d{1,5})`;

/** The address part of "ip:port" (null in, null out: parsers report what they did not find as null). */
export function endpointIp(endpoint: string | null): string | null {
  return endpoint === null ? null : endpoint.slice(0, endpoint.lastIndexOf(':'));
}

export function endpointPort(endpoint: string | null): number | null {
  return endpoint === null ? null : Number(endpoint.slice(endpoint.lastIndexOf(':') + 1));
}
