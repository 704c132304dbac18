#!/usr/bin/env node
/**
 * The `natpunch` executable. Loading the commands takes a few hundred milliseconds (more on a
 * busy host), and a Ctrl-C in that time would end the process by Node's default handler: exit
 * 130 without a word. So before loading anything else this answers Ctrl-C itself, the way a
 * command interrupted later does (one line, or the JSON error event under --json, exit 130). It
 * steps aside once the command is loaded: commands that hold something install their own.
 */
import { AbortedError } from '../errors.js';
import { errorEvent, errorLine, exitCodeFor, wantsStack } from './report-error.js';

const argv = process.argv.slice(2);
/** The arguments before `--` (those after it belong to someone else). */
const ownArgs = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv;

function report(error: unknown): void {
  // Under --json even a usage error is an event (one JSON object per line on stderr).
  process.stderr.write((ownArgs.includes('--json') ? JSON.stringify(errorEvent(error)) : errorLine(error, wantsStack(ownArgs))) + '\n');
}

const early = (): void => {
  report(new AbortedError('interrupted (SIGINT)'));
  process.exit(130);
};
process.on('SIGINT', early);
const stepAside = (): void => void process.off('SIGINT', early);

const { main } = await import('./commands.js');
main(argv, stepAside).then(
  (code) => { process.exitCode = code; },
  (error: unknown) => {
    report(error);
    process.exitCode = exitCodeFor(error);
  },
).finally(stepAside);
