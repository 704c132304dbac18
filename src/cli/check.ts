import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { UsageError } from '../errors.js';
import { checkNat } from '../nat/check.js';
import { explainReport } from '../nat/explain.js';
import { parseAddress, type TransportAddress } from '../wire/index.js';
import { parseArgs } from 'node:util';
import { usageErrors, integer } from './args.js';

export const checkUsage = 'natpunch check --stun HOST[:PORT] [--json] [--lifetime] [--lifetime-max SECONDS]';

export async function checkCommand(argv: string[]): Promise<number> {
  const { values } = usageErrors('check', () => parseArgs({ args: argv, strict: true, options: {
    stun: { type: 'string' },
    json: { type: 'boolean', default: false },
    lifetime: { type: 'boolean', default: false },
    'lifetime-max': { type: 'string' },
  } }));
  if (!values.stun) throw new UsageError(`natpunch check: --stun HOST[:PORT] is required (the STUN server to ask).\nusage: ${checkUsage}`);
  const server = await resolve(values.stun);
  const lifetimeMax = integer('check', 'lifetime-max', values['lifetime-max'], 120, 2, 3600);
  const report = await checkNat({ server, lifetime: values.lifetime || values['lifetime-max'] ? { maxSeconds: lifetimeMax } : false });
  process.stdout.write(values.json ? JSON.stringify(report) + '\n' : explainReport(report) + '\n');
  return 0;
}

/** HOST[:PORT] with a hostname resolved once, up front (the NAT tests need fixed addresses). */
async function resolve(text: string): Promise<TransportAddress> {
  const hostPort = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(text);
  if (hostPort && !net.isIP(hostPort[1]!.replace(/^\[|\]$/g, ''))) {
    const { address, family } = await lookup(hostPort[1]!).catch((error: Error) => {
      throw new UsageError(`natpunch check: cannot resolve ${hostPort[1]}: ${error.message}`);
    });
    return { family: family === 6 ? 6 : 4, address, port: hostPort[2] ? Number(hostPort[2]) : 3478 };
  }
  return parseAddress(text, 3478);
}
