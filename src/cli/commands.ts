/**
 * The commands, their usage and the dispatch from argv to one (main.ts, the executable, loads this
 * after it has installed its first Ctrl-C handler).
 */
import { VERSION } from '../version.js';
import { versionText } from './version.js';
import { type CommandSpec, KEY_FILE_DEFAULT, closestName, helpText } from './args.js';
import { serveCommand, serveSpec, serveUsage } from './serve.js';
import { checkCommand, checkSpec, checkUsage } from './check.js';
import { idCommand, idSpec, idUsage } from './id.js';
import { demoSpec, demoUsage } from './demo.js';
import { listenSpec, listenUsage } from './listen.js';
import { connectSpec, connectUsage } from './connect.js';
import { sendSpec, sendUsage } from './send.js';
import { receiveSpec, receiveUsage } from './receive.js';
import { exposeSpec, exposeUsage } from './expose.js';
import { forwardSpec, forwardUsage } from './forward.js';
import { punchSpec, punchUsage } from './punch.js';

const usage = `natpunch ${VERSION} — connect machines behind NATs

usage:
  ${serveUsage.replace(/\n/g, '\n  ')}
      STUN (RFC 8489 + RFC 5780), TURN and the rendezvous service; logs "ready" once listening
  ${checkUsage}
      what your NAT does, and what that means for connecting to peers
  ${idUsage}
      print this machine's peer id (creates the key on first use)
  natpunch lab up|down|status|exec|matrix ...
      network-namespace NAT lab with real kernel NATs (root)
  ${listenUsage}
      accept connections from peers; pipe each, in turn, to stdin/stdout
  ${connectUsage}
      connect to a peer by id; pipe stdin/stdout to it
  ${sendUsage}
      send files and directories to a peer running receive (resumes an interrupted transfer)
  ${receiveUsage}
      receive files into DIR (default: here), each verified (SHA-256) before it takes its name
  ${exposeUsage}
      publish a local TCP service to peers (they reach it with natpunch forward)
  ${forwardUsage}
      like ssh -L: each TCP connection to --listen reaches the service the peer exposes
  ${punchUsage}
      no server: punch to a peer whose public endpoint you know; pipe stdin/stdout to it
  ${demoUsage}
      two peers behind two different real NATs (a lab; loopback when not root)
  natpunch help, natpunch COMMAND --help, natpunch --version [--verbose]

The key (this machine's identity) lives in ${KEY_FILE_DEFAULT}; --key FILE picks another.
Exit codes: 0 ok, 1 runtime failure, 2 usage error.`;

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  serve: async () => serveCommand,
  check: async () => checkCommand,
  id: async () => idCommand,
  listen: async () => (await import('./listen.js')).listenCommand,
  connect: async () => (await import('./connect.js')).connectCommand,
  send: async () => (await import('./send.js')).sendCommand,
  receive: async () => (await import('./receive.js')).receiveCommand,
  expose: async () => (await import('./expose.js')).exposeCommand,
  forward: async () => (await import('./forward.js')).forwardCommand,
  punch: async () => (await import('./punch.js')).punchCommand,
  demo: async () => (await import('./demo.js')).demoCommand,
  lab: async () => (await import('./lab.js')).labCommand,
};

/** Each command's flags, for `natpunch COMMAND --help` (`lab` prints its own). */
const specs: Record<string, CommandSpec> = {
  serve: serveSpec, check: checkSpec, id: idSpec, listen: listenSpec, connect: connectSpec, send: sendSpec, receive: receiveSpec, expose: exposeSpec, forward: forwardSpec, punch: punchSpec, demo: demoSpec,
};

/**
 * Runs the command `argv` names; resolves to its exit code. `starting` is called once the command
 * is loaded, just before it runs: from then on, Ctrl-C is the command's to handle.
 */
export async function main(argv: string[], starting: () => void = () => undefined): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage + '\n');
    return name ? 0 : 2;
  }
  if (name === '--version' || name === 'version') {
    const unknown = rest.filter((arg) => arg !== '--verbose');
    if (unknown.length > 0) {
      process.stderr.write(`natpunch ${name}: unknown option ${unknown[0]}; it takes only --verbose (natpunch version --verbose lists the native addons)\n`);
      return 2;
    }
    process.stdout.write(await versionText(rest.includes('--verbose')) + '\n');
    return 0;
  }
  const load = commands[name];
  if (!load) {
    const meant = closestName(name, [...Object.keys(commands), 'help', 'version']);
    process.stderr.write(`natpunch: unknown command '${name}'${meant ? ` (did you mean '${meant}'?)` : ''}. Run 'natpunch help' for the list.\n`);
    return 2;
  }
  // `natpunch COMMAND --help`: that command's flags (arguments after `--` belong to someone else).
  const spec = specs[name];
  if (spec && (own(rest).includes('--help') || own(rest).includes('-h'))) {
    process.stdout.write(helpText(spec) + '\n');
    return 0;
  }
  const command = await load();
  starting();
  return command(rest);
}

/** The arguments before `--`. */
function own(args: readonly string[]): readonly string[] {
  return args.includes('--') ? args.slice(0, args.indexOf('--')) : args;
}
