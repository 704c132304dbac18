/**
 * Ctrl-C (SIGINT) and SIGTERM for commands that hold a connection: the first one aborts what
 * runs (an open connection is aborted with an authenticated RESET, so the other side learns it at
 * once: ERR_PEER_ABORTED), then the command exits with the shell's code for the signal (128 + its
 * number: 130 for SIGINT, 143 for SIGTERM); a second one exits at once.
 */
import { AbortedError } from '../errors.js';

const EXIT_CODES: Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 130, SIGTERM: 143 };

export interface Interrupts {
  /** Aborted on the first SIGINT or SIGTERM, with an AbortedError naming it. */
  readonly signal: AbortSignal;
  /** The exit code for the signal received (130, 143), or undefined before one came. */
  readonly exitCode: number | undefined;
  /** Remove the handlers (the default ones come back). */
  dispose(): void;
}

export function interrupts(): Interrupts {
  const controller = new AbortController();
  let exitCode: number | undefined;
  const on = (name: 'SIGINT' | 'SIGTERM') => (): void => {
    if (exitCode !== undefined) process.exit(exitCode);
    exitCode = EXIT_CODES[name];
    controller.abort(new AbortedError(`interrupted (${name})`));
  };
  const onInt = on('SIGINT');
  const onTerm = on('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    signal: controller.signal,
    get exitCode() { return exitCode; },
    dispose: () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
}
