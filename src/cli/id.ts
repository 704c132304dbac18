import { loadOrCreateIdentity, defaultKeyFile } from '../identity/index.js';
import { type CommandSpec, keyFlag, parseCommand, usageLine } from './args.js';

export const idSpec: CommandSpec = {
  name: 'id',
  summary: 'Print this machine\'s peer id (the text form of its Ed25519 public key), creating the key on first use.',
  flags: { key: keyFlag },
  examples: ['natpunch id', 'NATPUNCH_HOME=/srv/natpunch natpunch id'],
};

export const idUsage = usageLine(idSpec);

/** Print this machine's peer id, creating the key file (mode 0600) on first use. */
export async function idCommand(argv: string[]): Promise<number> {
  const { values } = parseCommand(idSpec, argv);
  const identity = await loadOrCreateIdentity((values['key'] as string | undefined) ?? defaultKeyFile());
  process.stdout.write(identity.peerId + '\n');
  return 0;
}
