import type { NatReport } from './check.js';

/**
 * A NAT report in words a newcomer understands: each measurement, what it means, and what it
 * implies for connecting to peers (in the spirit of `tailscale netcheck`).
 */
export function explainReport(report: NatReport): string {
  const lines: string[] = [`NAT check against ${report.server}`, ''];
  const row = (label: string, value: string, meaning?: string): void => {
    lines.push(`  ${(label + ':').padEnd(18)}${value}${meaning ? `\n  ${''.padEnd(18)}${meaning}` : ''}`);
  };
  if (!report.udp) {
    row('UDP', 'blocked', 'no STUN answer over UDP: a firewall drops UDP, or the server is down or unreachable');
    lines.push('', verdict(report));
    return lines.join('\n');
  }
  row('UDP', `yes (round trip ${report.rttMs} ms)`);
  row('Public address', `${report.mappedAddress}`, report.natted ? 'behind a NAT: peers see this address, not your own' : 'no NAT: this is your own address');
  row('Mapping', report.mapping ?? 'unknown', mappingMeaning(report));
  row('Filtering', report.filtering ?? 'unknown', filteringMeaning(report));
  row('NAT type', report.rfc3489 ?? 'unknown', report.rfc3489 ? '(the classic RFC 3489 name)' : undefined);
  row('Port allocation', report.portAllocation === 'sequential' ? `sequential (step ${report.portDelta})` : report.portAllocation ?? 'unknown', allocationMeaning(report));
  if (report.natted) row('Hairpin', report.hairpin ? 'yes' : 'no', report.hairpin
    ? 'peers behind this same NAT can reach you at your public address'
    : 'peers behind this same NAT must use your private address');
  if (report.lifetime) {
    const { aliveSeconds, expiredSeconds } = report.lifetime;
    const value = expiredSeconds === null
      ? `longer than ${aliveSeconds ?? 0} s`
      : aliveSeconds === null ? `shorter than ${expiredSeconds} s` : `between ${aliveSeconds} and ${expiredSeconds} s`;
    row('Mapping lifetime', value, 'idle UDP mappings last this long: keepalives must come more often');
  }
  if (!report.otherAddress) lines.push('', '  The server has no alternate address (RFC 5780), so mapping and filtering could not be measured.');
  lines.push('', verdict(report));
  return lines.join('\n');
}

function mappingMeaning(r: NatReport): string | undefined {
  switch (r.mapping) {
    case 'endpoint-independent': return 'your public port stays the same whoever you talk to (good for hole punching)';
    case 'address-dependent': return 'your public port changes with each host you talk to';
    case 'address-and-port-dependent': return 'your public port changes with every host and port you talk to (hard for hole punching)';
    default: return undefined;
  }
}

function filteringMeaning(r: NatReport): string | undefined {
  switch (r.filtering) {
    case 'endpoint-independent': return 'anyone can reach your public port once it is open';
    case 'address-dependent': return 'only hosts you have sent to can reach you';
    case 'address-and-port-dependent': return 'only the exact host and port you have sent to can reach you';
    default: return undefined;
  }
}

function allocationMeaning(r: NatReport): string | undefined {
  switch (r.portAllocation) {
    case 'preserving': return 'the NAT keeps your local port number when it can';
    case 'sequential': return 'each new connection gets the next port: peers can predict it';
    case 'random': return r.mapping === 'endpoint-independent' ? 'ports are chosen at random (harmless with this mapping)' : 'ports are chosen at random: they cannot be predicted';
    default: return undefined;
  }
}

function verdict(r: NatReport): string {
  switch (r.rfc3489) {
    case 'open-internet': return 'What this means: you are directly reachable; any peer can connect to you.';
    case 'full-cone':
    case 'restricted-cone':
    case 'port-restricted-cone':
      return 'What this means: direct connections by UDP hole punching work with peers behind cone NATs and most\n'
        + 'firewalls; a peer behind a symmetric NAT needs port prediction (or a relay, if it is port-restricted).';
    case 'symmetric':
      return r.portAllocation === 'sequential'
        ? 'What this means: hard NAT, but its ports are predictable: direct connections work with cone peers using\nport prediction; symmetric peers need a relay.'
        : 'What this means: hard NAT: direct connections work only with peers behind full or restricted cones (or\nby birthday probing); otherwise traffic goes through a relay.';
    case 'symmetric-udp-firewall': return 'What this means: no NAT, but a stateful firewall: hole punching works with most peers.';
    case 'udp-blocked': return 'What this means: UDP is blocked: connections need TCP hole punching or a relay over TCP.';
    default: return 'What this means: not enough was measured to say; try a STUN server with an alternate address.';
  }
}
