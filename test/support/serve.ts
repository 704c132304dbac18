import { natpunch } from './cli.js';
import type { Spawner } from './coturn.js';
import { ProcessOutput, stopProcess } from './process.js';

export interface RunningServe {
  output: ProcessOutput;
  /**
   * Its STUN endpoints as the ready line lists them: primary first, then (with an alternate
   * address) primary IP + alternate port, alternate IP + primary port, alternate IP + port.
   */
  endpoints: string[];
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
  const endpoints = [...ready.matchAll(/\b(\d{1,3}(?:\.\d{1,3}){3}:\d{1,5})\b/g)].map((m) => m[1]!);
  return { output, endpoints, stop };
}
