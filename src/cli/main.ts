#!/usr/bin/env node
import { NatpunchError } from '../errors.js';
import { VERSION } from '../version.js';
import { serveCommand, serveUsage } from './serve.js';
import { checkCommand, checkUsage } from './check.js';
import { idCommand, idUsage } from './id.js';
import { demoUsage } from './demo.js';
import { listenUsage } from './listen.js';
import { connectUsage } from './connect.js';
import { exposeUsage } from './expose.js';
import { forwardUsage } from './forward.js';

const usage = `natpunch ${VERSION} — connect machines behind NATs

usage:
  ${serveUsage}
      STUN (RFC 8489 + RFC 5780) and the rendezvous service; logs "ready" once listening
  ${checkUsage}
      what your NAT does, and what that means for connecting to peers
  ${idUsage}
      print this machine's peer id (creates the key on first use)
  natpunch lab up|down|status|exec ...
      network-namespace NAT lab with real kernel NATs (root)
  ${listenUsage}
      accept connections from peers; pipe each to stdin/stdout
  ${connectUsage}
      connect to a peer by id; pipe stdin/stdout to it
  ${exposeUsage}
      publish a local TCP service to peers (they reach it with natpunch forward)
  ${forwardUsage}
      like ssh -L: each TCP connection to --listen reaches the service the peer exposes
  ${demoUsage}
      two peers behind two different real NATs (a lab; loopback when not root)
  natpunch help

Exit codes: 0 ok, 1 runtime failure, 2 usage error.`;

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  serve: async () => serveCommand,
  check: async () => checkCommand,
  id: async () => idCommand,
  listen: async () => (await import('./listen.js')).listenCommand,
  connect: async () => (await import('./connect.js')).connectCommand,
  expose: async () => (await import('./expose.js')).exposeCommand,
  forward: async () => (await import('./forward.js')).forwardCommand,
  demo: async () => (await import('./demo.js')).demoCommand,
  lab: async () => (await import('./lab.js')).labCommand,
};

/** Each command's usage line, for `natpunch COMMAND --help` (`lab` prints its own). */
const usages: Record<string, string> = {
  serve: serveUsage, check: checkUsage, id: idUsage, listen: listenUsage, connect: connectUsage, expose: exposeUsage, forward: forwardUsage, demo: demoUsage,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage + '\n');
    return name ? 0 : 2;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(VERSION + '\n');
    return 0;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`natpunch: unknown command '${name}'. Run 'natpunch help' for the list.\n`);
    return 2;
  }
  // `natpunch COMMAND --help`: that command's usage (arguments after `--` belong to someone else).
  const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  const commandUsage = usages[name];
  if (commandUsage && (own.includes('--help') || own.includes('-h'))) {
    process.stdout.write(`usage: ${commandUsage}\n`);
    return 0;
  }
  return (await load())(rest);
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (error: unknown) => {
    if (NatpunchError.is(error)) {
      // Commands name themselves ("natpunch serve: …"); other errors get the program's name.
      process.stderr.write(error.message.startsWith('natpunch ') ? `${error.message}\n` : `natpunch: ${error.message}\n`);
      process.exitCode = error.code === 'ERR_USAGE' ? 2 : 1;
    } else {
      process.stderr.write(`natpunch: unexpected failure: ${(error as Error)?.stack ?? String(error)}\n`);
      process.exitCode = 1;
    }
  },
);
