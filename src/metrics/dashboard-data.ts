/**
 * What the dashboard shows, as JSON (`GET /dashboard.json`), computed from the same registry
 * `/metrics` exposes, so the page and a Prometheus scrape taken at the same moment agree.
 * Totals only: rates (connects per second, bandwidth) are differences between two polls,
 * which the page takes itself.
 */
import type { Registry } from 'prom-client';

export interface DashboardData {
  /** Unix ms when the registry was read. */
  time: number;
  version: string;
  peers: number;
  connections: number;
  pendingConnects: number;
  /** Connects brokered, by outcome (accepted, refused, timed-out, abandoned), and their sum. */
  connects: { total: number; byOutcome: Record<string, number> };
  /** By NAT class pair "initiator → target": connects that ended, and how many were accepted. */
  natPairs: { pair: string; total: number; accepted: number }[];
  /** Accepted connects by the technique their offers point at. */
  techniques: { technique: string; count: number }[];
  /**
   * How connections ended as their initiators reported them ('report' capability): connected or
   * failed, and the connected ones by path and technique, most first.
   */
  reported: { connected: number; failed: number; byTechnique: { technique: string; path: string; count: number }[] };
  relay: {
    /** Whether this server runs the built-in TURN relay. */
    enabled: boolean;
    allocations: number;
    allocationsTotal: number;
    bytesToPeers: number;
    bytesToClients: number;
    /** Accepted connects whose intent asked for the relay. */
    relayConnects: number;
  };
  limits: Record<string, number>;
  stun: { success: number; error: number; dropped: number };
}

type Sample = { labels: Record<string, string | number>; value: number };

export async function dashboardData(registry: Registry): Promise<DashboardData> {
  const metrics = new Map((await registry.getMetricsAsJSON()).map((m) => [m.name, m.values as Sample[]]));
  const samples = (name: string): Sample[] => metrics.get(name) ?? [];
  const total = (name: string, where: (labels: Record<string, string | number>) => boolean = () => true): number =>
    samples(name).filter((s) => where(s.labels)).reduce((sum, s) => sum + s.value, 0);
  const byLabel = (name: string, label: string): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const s of samples(name)) out[String(s.labels[label])] = (out[String(s.labels[label])] ?? 0) + s.value;
    return out;
  };

  const pairs = new Map<string, { total: number; accepted: number }>();
  for (const s of samples('natpunch_rendezvous_connects_total')) {
    const pair = `${s.labels['initiator_nat']} → ${s.labels['target_nat']}`;
    const entry = pairs.get(pair) ?? { total: 0, accepted: 0 };
    entry.total += s.value;
    if (s.labels['outcome'] === 'accepted') entry.accepted += s.value;
    pairs.set(pair, entry);
  }
  const techniques = byLabel('natpunch_rendezvous_punches_total', 'technique');
  // The initiator's reports only: one per connection (the target's would count each twice).
  const reports = samples('natpunch_rendezvous_reports_total').filter((s) => s.labels['role'] === 'initiator');
  const won = new Map<string, { technique: string; path: string; count: number }>();
  for (const s of reports) {
    if (s.labels['outcome'] !== 'connected') continue;
    const key = `${s.labels['technique']} ${s.labels['path']}`;
    const entry = won.get(key) ?? { technique: String(s.labels['technique']), path: String(s.labels['path']), count: 0 };
    entry.count += s.value;
    won.set(key, entry);
  }
  const reportedTotal = (outcome: string): number => reports.filter((s) => s.labels['outcome'] === outcome).reduce((sum, s) => sum + s.value, 0);
  const byOutcome = byLabel('natpunch_rendezvous_connects_total', 'outcome');
  return {
    time: Date.now(),
    version: String(samples('natpunch_info')[0]?.labels['version'] ?? ''),
    peers: total('natpunch_rendezvous_peers'),
    connections: total('natpunch_rendezvous_connections'),
    pendingConnects: total('natpunch_rendezvous_pending_connects'),
    connects: { total: Object.values(byOutcome).reduce((a, b) => a + b, 0), byOutcome },
    natPairs: [...pairs].map(([pair, counts]) => ({ pair, ...counts })).sort((a, b) => b.total - a.total || (a.pair < b.pair ? -1 : 1)),
    techniques: Object.entries(techniques).map(([technique, count]) => ({ technique, count })).sort((a, b) => b.count - a.count || (a.technique < b.technique ? -1 : 1)),
    reported: {
      connected: reportedTotal('connected'),
      failed: reportedTotal('failed'),
      byTechnique: [...won.values()].sort((a, b) => b.count - a.count || (a.technique < b.technique ? -1 : a.technique > b.technique ? 1 : a.path < b.path ? -1 : 1)),
    },
    relay: {
      enabled: metrics.has('natpunch_turn_allocations'),
      allocations: total('natpunch_turn_allocations'),
      allocationsTotal: total('natpunch_turn_allocations_total'),
      bytesToPeers: total('natpunch_turn_relayed_bytes_total', (l) => l['direction'] === 'to-peer'),
      bytesToClients: total('natpunch_turn_relayed_bytes_total', (l) => l['direction'] === 'to-client'),
      relayConnects: total('natpunch_rendezvous_punches_total', (l) => l['transport'] === 'relay'),
    },
    limits: byLabel('natpunch_limits_hit_total', 'limit'),
    stun: {
      success: total('natpunch_stun_requests_total', (l) => l['outcome'] === 'success'),
      error: total('natpunch_stun_requests_total', (l) => l['outcome'] === 'error'),
      dropped: total('natpunch_stun_dropped_total'),
    },
  };
}
