/* Client connections as the management API shows them. The data plane keeps two learned entries per
 * connection (client->VIP rewritten to the server, and server->client rewritten back to the VIP); a
 * connection is the first one. Killing a connection installs drop affinities for both directions,
 * which take precedence over learned flows; the learned entries then idle out. */
import type { InstalledAffinity, Protocol } from '../../firmware/dataplane.js';
import type { ManagedAppliance } from './managed-appliance.js';

export interface Flow {
  service: string;
  protocol: string;
  client: string;
  vip: string;
  server: string;
  state: string;
  packets: number;
  bytes: number;
  /** Seconds until the data plane forgets the connection if no packet arrives. */
  expiresInSeconds: number;
  /** A drop affinity installed by a kill blocks it. */
  killed: boolean;
}

export interface FlowFilter {
  service?: string;
  server?: string;
  client?: string;
  state?: string;
}

/** Most learned entries read per request; the data plane lists manager affinities first. */
export const FLOW_SCAN_LIMIT = 200_000;

const endpoint = (ip: string, port: number) => `${ip}:${port}`;

/** Live states: the handshake and established connections, and UDP/other flows (state "none"). */
export function isActive(flow: Pick<Flow, 'state'>): boolean {
  return flow.state !== 'fin' && flow.state !== 'rst';
}

export function listFlows(appliance: ManagedAppliance): Flow[] {
  const entries = appliance.affinities({ max: FLOW_SCAN_LIMIT, includeLearned: true });
  const dropped = new Set(
    entries.filter((e) => e.origin === 'manager' && e.action.type === 'drop').map((e) => keyString(e.key)),
  );
  // Each direction tracks the TCP flags it carries; the connection is as closed as either side.
  const reverseStates = new Map(
    entries.filter((e) => e.origin === 'learned' && e.action.type === 'forward' && e.action.nat?.srcIp).map((e) => [keyString(e.key), e.tcpState ?? 'none']),
  );
  const services = appliance.services();
  const flows: Flow[] = [];
  for (const entry of entries) {
    if (entry.origin !== 'learned' || entry.action.type !== 'forward' || !entry.action.nat?.dstIp) continue;
    const { key } = entry;
    const service = services.find(
      ({ definition: d }) => d.vip === key.dstIp && d.port === key.dstPort && d.protocol === key.protocol,
    );
    if (!service) continue;
    const server = { ip: entry.action.nat.dstIp, port: entry.action.nat.dstPort ?? key.dstPort };
    const reverse = reverseStates.get(keyString({ protocol: key.protocol, srcIp: server.ip, srcPort: server.port, dstIp: key.srcIp, dstPort: key.srcPort }));
    flows.push({
      service: service.name,
      protocol: String(key.protocol),
      client: endpoint(key.srcIp, key.srcPort),
      vip: endpoint(key.dstIp, key.dstPort),
      server: endpoint(server.ip, server.port),
      state: connectionState(entry.tcpState ?? 'none', reverse),
      packets: entry.packets,
      bytes: entry.bytes,
      expiresInSeconds: entry.ttlSeconds,
      killed: dropped.has(keyString(key)),
    });
  }
  return flows;
}

export function filterFlows(flows: Flow[], filter: FlowFilter): Flow[] {
  return flows.filter(
    (flow) =>
      (filter.service === undefined || flow.service === filter.service) &&
      (filter.server === undefined || flow.server === filter.server) &&
      (filter.client === undefined || flow.client === filter.client || flow.client.startsWith(`${filter.client}:`)) &&
      (filter.state === undefined || flow.state === filter.state),
  );
}

/** Blocks one connection in both directions for `seconds`; false when no such connection exists. */
export function killFlow(appliance: ManagedAppliance, target: { service: string; client: string }, seconds: number): Flow | undefined {
  const flow = listFlows(appliance).find((f) => f.service === target.service && f.client === target.client);
  if (!flow) return undefined;
  const protocol = flow.protocol as Protocol;
  const [clientIp, clientPort] = splitEndpoint(flow.client);
  const [vipIp, vipPort] = splitEndpoint(flow.vip);
  const [serverIp, serverPort] = splitEndpoint(flow.server);
  const drop = { type: 'drop' } as const;
  appliance.addAffinity({ key: { protocol, srcIp: clientIp, srcPort: clientPort, dstIp: vipIp, dstPort: vipPort }, action: drop, ttlSeconds: seconds });
  appliance.addAffinity({ key: { protocol, srcIp: serverIp, srcPort: serverPort, dstIp: clientIp, dstPort: clientPort }, action: drop, ttlSeconds: seconds });
  return { ...flow, killed: true };
}

export function splitEndpoint(value: string): [string, number] {
  const colon = value.lastIndexOf(':');
  return [value.slice(0, colon), Number(value.slice(colon + 1))];
}

const STATE_ORDER = ['none', 'syn', 'established', 'fin', 'rst'];

function connectionState(forward: string, reverse: string | undefined): string {
  return reverse !== undefined && STATE_ORDER.indexOf(reverse) > STATE_ORDER.indexOf(forward) ? reverse : forward;
}

function keyString(key: InstalledAffinity['key']): string {
  return `${key.protocol} ${key.srcIp}:${key.srcPort} ${key.dstIp}:${key.dstPort}`;
}
