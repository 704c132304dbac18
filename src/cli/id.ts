import { parseArgs } from 'node:util';
import { loadOrCreateIdentity, defaultKeyFile } from '../identity/index.js';
import { usageErrors } from './args.js';

export const idUsage = 'natpunch id [--key FILE]';

/** Print this machine's peer id, creating the key file (mode 0600) on first use. */
export async function idCommand(argv: string[]): Promise<number> {
  const { values } = usageErrors('id', () => parseArgs({ args: argv, strict: true, options: { key: { type: 'string' } } }));
  const identity = await loadOrCreateIdentity(values.key ?? defaultKeyFile());
  process.stdout.write(identity.peerId + '\n');
  return 0;
}
