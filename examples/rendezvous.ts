/**
 * A rendezvous server for the examples: `natpunch serve` (the CLI that ships with the package),
 * on loopback with ports the kernel picks. In real use the server runs on a public host and
 * peers get its URL (`natpunch serve --address 203.0.113.10` → `ws://203.0.113.10:8080/`); set
 * NATPUNCH_SERVER to such a URL and the examples use it instead of starting their own.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface Rendezvous {
  /** The WebSocket URL peers register at: `PeerOptions.server`. */
  url: string;
  /** Stop the server (when the example started it). */
  stop(): Promise<void>;
}

/** How long `natpunch serve` may take to print its ready line. */
const READY_TIMEOUT_MS = 20_000;

export async function startRendezvous(): Promise<Rendezvous> {
  const given = process.env['NATPUNCH_SERVER'];
  if (given) return { url: given, stop: async () => undefined };

  // The package's own CLI, found beside its entry point (dist/src/index.js → dist/src/cli/main.js).
  const cli = fileURLToPath(new URL('./cli/main.js', import.meta.resolve('natpunch')));
  const serve = spawn(process.execPath, [cli, 'serve', '--address', '127.0.0.1', '--port', '0', '--http-port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stop = async (): Promise<void> => {
    if (serve.exitCode !== null || serve.signalCode !== null) return;
    const exited = new Promise((resolve) => serve.once('exit', resolve));
    serve.kill('SIGTERM');
    await exited;
  };
  // serve logs "… ready: STUN on udp+tcp 127.0.0.1:PORT; …; rendezvous ws://127.0.0.1:PORT/".
  const url = await new Promise<string>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`natpunch serve: not ready within ${READY_TIMEOUT_MS} ms:\n${output}`)), READY_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const ready = /ready: .*rendezvous (ws:\/\/\S+)/.exec(output);
      if (ready) {
        clearTimeout(timer);
        resolve(ready[1]!);
      }
    };
    serve.stdout.on('data', onData);
    serve.stderr.on('data', onData);
    serve.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`natpunch serve exited (${code}) before it was ready:\n${output}`));
    });
  }).catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  return { url, stop };
}
