/* What a test prints when a service's flow count is not the number of connections it made: the
 * service's learned entries in both directions (tuples, TCP states, packets, time left), the flow
 * and drop counters, and the client's source ports (a reused port shows twice). The data plane keeps
 * no creation time; an entry's age is its state's timeout minus the time it has left. */
import type { DataplaneStats, InstalledAffinity } from '../../firmware/dataplane.js';

export interface FlowReportInput {
  vip: string;
  port: number;
  serviceId: number;
  stats: DataplaneStats;
  /** Learned and manager entries, as listAffinities({ includeLearned: true }) gives them. */
  entries: InstalledAffinity[];
  /** The client's source port of every connection, in order, when the test knows them. */
  clientPorts?: number[];
}

const endpoint = (ip: string, port: number) => `${ip}:${port}`;

function entryLine(e: InstalledAffinity): string {
  const { key, action } = e;
  const nat = action.type === 'forward' && action.nat ? action.nat : undefined;
  const to = nat ? ` nat src ${nat.srcIp ?? '-'}:${nat.srcPort ?? '-'} dst ${nat.dstIp ?? '-'}:${nat.dstPort ?? '-'}` : '';
  return (
    `  ${e.origin} ${key.protocol} ${endpoint(key.srcIp, key.srcPort)} -> ${endpoint(key.dstIp, key.dstPort)} ${action.type}${to}` +
    ` state ${e.tcpState ?? 'none'} packets ${e.packets} bytes ${e.bytes} ttl left ${e.ttlSeconds}s`
  );
}

export function flowReport(input: FlowReportInput): string {
  const { vip, port, serviceId, stats, entries } = input;
  const toVip = entries.filter((e) => e.key.dstIp === vip && e.key.dstPort === port);
  const fromVip = entries.filter((e) => e.action.type === 'forward' && e.action.nat?.srcIp === vip);
  const drops = Object.entries(stats.drops).filter(([, n]) => n > 0);
  const lines = [
    `service ${serviceId} (${endpoint(vip, port)}): flows per server ` +
      stats.servers
        .filter((s) => s.serviceId === serviceId)
        .map((s) => `${endpoint(s.ip, s.port)}=${s.flows}`)
        .join(' '),
    `flows: learned ${stats.flows.learned} created ${stats.flows.created} expired ${stats.flows.expired}; ` +
      `lookups ${JSON.stringify(stats.lookups)}`,
    `drops: ${drops.length ? drops.map(([reason, n]) => `${reason}=${n}`).join(' ') : 'none'}`,
    `client -> VIP entries (${toVip.length}):`,
    ...toVip.map(entryLine),
    `server -> client entries translated to the VIP (${fromVip.length}):`,
    ...fromVip.map(entryLine),
  ];
  if (input.clientPorts) {
    const seen = new Map<number, number>();
    for (const p of input.clientPorts) seen.set(p, (seen.get(p) ?? 0) + 1);
    const reused = [...seen].filter(([, n]) => n > 1).map(([p, n]) => `${p} x${n}`);
    lines.push(`client source ports (${input.clientPorts.length}): ${input.clientPorts.join(' ')}`);
    lines.push(`reused client ports: ${reused.length ? reused.join(' ') : 'none'}`);
  }
  return lines.join('\n');
}
