import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { NatpunchError, UsageError } from '../errors.js';
import { checkNat } from '../nat/check.js';
import { explainReport } from '../nat/explain.js';
import { stunOverTcp } from '../nat/stun-over-tcp.js';
import { formatAddress, parseAddress, type TransportAddress } from '../wire/index.js';
import { type CommandSpec, integer, parseCommand, usageLine, usageText } from './args.js';

export const checkSpec: CommandSpec = {
  name: 'check',
  summary: 'What your NAT does (RFC 5780 mapping and filtering, the RFC 3489 class, port allocation, hairpinning),\n'
    + 'and what that means for connecting to peers. Asks a STUN server with RFC 5780 support (natpunch serve --alt-address).',
  flags: {
    stun: {
      type: 'string', value: 'HOST[:PORT]', required: true, help: 'the STUN server to ask; PORT defaults to 3478',
      example: '--stun stun.example.net:3478', misnamed: ['server', 'stun-server'],
    },
    json: { type: 'boolean', help: 'print one JSON object (mappedAddress, natted, mapping, filtering, rfc3489, portAllocation, hairpin, ...)', example: '--json | jq .rfc3489' },
    'local-port': {
      type: 'string', value: 'P', defaultText: 'an ephemeral port',
      help: 'run the main test from this UDP port: its mapped address is then what the other side of natpunch punch --local-port P gives as --peer',
      example: '--local-port 40000',
    },
    lifetime: { type: 'boolean', help: 'also measure how long the NAT keeps an idle UDP mapping (RFC 5780 §4.6; takes up to --lifetime-max)', example: '--lifetime' },
    'lifetime-max': {
      type: 'string', value: 'SECONDS', defaultText: '120', help: 'the longest idle time the lifetime test tries (2 to 3600); implies --lifetime',
      example: '--lifetime-max 300',
    },
  },
  notes: [
    'A server that answers neither over UDP nor over TCP is an error (exit 1); "UDP blocked" is reported',
    'only when it answers over TCP.',
  ],
  examples: ['natpunch check --stun 203.0.113.7', 'natpunch check --stun 203.0.113.7:3478 --json', 'natpunch check --stun 203.0.113.7 --local-port 40000 --json | jq -r .mappedAddress'],
};

export const checkUsage = usageLine(checkSpec);

/** How long the TCP probe waits, when UDP got no answer, to tell "UDP blocked" from "no server". */
const TCP_PROBE_MS = 3000;

export async function checkCommand(argv: string[]): Promise<number> {
  const { values } = parseCommand(checkSpec, argv);
  const stun = values['stun'] as string | undefined;
  if (!stun) throw new UsageError(`natpunch check: --stun HOST[:PORT] is required (the STUN server to ask).\n${usageText(checkSpec)}`);
  const lifetimeText = values['lifetime-max'] as string | undefined;
  const lifetimeMax = integer('check', 'lifetime-max', lifetimeText, 120, 2, 3600);
  const portText = values['local-port'] as string | undefined;
  const localPort = portText === undefined ? undefined : integer('check', 'local-port', portText, 0, 1, 65535);
  const server = await resolve(stun);
  const report = await checkNat({ server, ...(localPort !== undefined ? { localPort } : {}), lifetime: values['lifetime'] === true || lifetimeText !== undefined ? { maxSeconds: lifetimeMax } : false })
    .catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EADDRINUSE' && error.code !== 'EACCES') throw error;
      throw new NatpunchError('ERR_LISTEN', `natpunch check: cannot bind UDP port ${localPort}: ${error.code === 'EADDRINUSE' ? 'the port is in use; choose another --local-port' : 'permission denied; choose a port from 1024 up'}`, { cause: error });
    });
  if (!report.udp) {
    // No UDP answer: a firewall dropping UDP, or nobody there. Only a TCP answer tells them apart.
    const tcp = await stunOverTcp(server, TCP_PROBE_MS);
    if (!tcp.ok) {
      throw new NatpunchError('ERR_UNREACHABLE', `natpunch check: the STUN server ${formatAddress(server)} did not answer over UDP, nor over TCP (${tcp.reason}); `
        + 'check the address and port, and that a STUN server (natpunch serve) runs there');
    }
  }
  process.stdout.write(values['json'] === true ? JSON.stringify(report) + '\n' : explainReport(report) + '\n');
  return 0;
}

/** HOST[:PORT] with a hostname resolved once, up front (the NAT tests need fixed addresses). */
async function resolve(text: string): Promise<TransportAddress> {
  const hostPort = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(text);
  if (hostPort && !net.isIP(hostPort[1]!.replace(/^\[|\]$/g, ''))) {
    const { address, family } = await lookup(hostPort[1]!).catch((error: NodeJS.ErrnoException) => {
      // Not a usage error: the name is well formed, the lookup failed (or the network is down).
      throw new NatpunchError('ERR_DNS', `natpunch check: cannot resolve ${hostPort[1]} (${error.code ?? error.message}); check the spelling, or give an IP address`);
    });
    return { family: family === 6 ? 6 : 4, address, port: hostPort[2] ? Number(hostPort[2]) : 3478 };
  }
  try {
    return parseAddress(text, 3478);
  } catch (error) {
    throw new UsageError(`natpunch check: --stun ${JSON.stringify(text)}: ${(error as Error).message}`);
  }
}
