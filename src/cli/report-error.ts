/**
 * How the CLI reports a failure: one line on stderr naming what failed and what to do next (or
 * `{"event":"error","code":...,"message":...}` under --json), exit 2 for usage errors and 1 for
 * everything else, and a stack trace only when asked for (--log-level debug, or
 * NODE_DEBUG=natpunch): an ordinary mistake is not a crash.
 */
import { NatpunchError } from '../errors.js';

/** The stable code of `error` for the JSON event: its own, or ERR_UNEXPECTED for a bug. */
export function errorCode(error: unknown): string {
  return NatpunchError.is(error) ? error.code : 'ERR_UNEXPECTED';
}

/** Exit status for a failure: 2 for a usage error, else 1. */
export function exitCodeFor(error: unknown): number {
  return NatpunchError.is(error) && error.code === 'ERR_USAGE' ? 2 : 1;
}

/** The JSON `error` event (the --json contract). */
export function errorEvent(error: unknown): { event: 'error'; code: string; message: string } {
  return { event: 'error', code: errorCode(error), message: messageOf(error) };
}

/**
 * One line for humans, prefixed "natpunch: " unless the message already names its command
 * ("natpunch serve: …"), so a prefix is never doubled.
 */
export function errorLine(error: unknown, withStack = false): string {
  const message = messageOf(error);
  // "natpunch serve: …" already names where; an unexpected error says so after that name.
  const named = /^(natpunch(?: [\w-]+)*): ([^]*)$/.exec(message);
  const [where, what] = named ? [named[1]!, named[2]!] : ['natpunch', message];
  const line = `${where}: ${NatpunchError.is(error) ? '' : 'unexpected failure: '}${what}`;
  const stack = withStack && error instanceof Error && error.stack ? `\n${error.stack}` : '';
  return line + stack;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Whether a stack trace was asked for: `--log-level debug` among the arguments, or NODE_DEBUG naming natpunch. */
export function wantsStack(argv: readonly string[]): boolean {
  const at = argv.indexOf('--log-level');
  return (at >= 0 && argv[at + 1] === 'debug') || argv.includes('--log-level=debug') || /natpunch/.test(process.env['NODE_DEBUG'] ?? '');
}
