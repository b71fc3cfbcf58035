/* Cluster-wide views for the management API: any member asks its peers' management APIs (the
 * /api/peer/ routes, with its unit certificate) and merges their answers with its own, keeping a
 * per-unit breakdown. Per-server counters add up because each packet is handled by exactly one
 * member; connections are counted by the member that owns their work unit, since every member
 * holds a replicated copy of every connection. */
import type { ClusterSource } from './cluster-source.js';
import type { Flow } from './flows.js';
import type { PeerAnswer, PeerClient } from './peer-client.js';
import type { ServerState, ServerView, ServiceView } from './views.js';

export const WORK_UNIT_COUNT = 1024;

export interface ClusterContext {
  source: ClusterSource;
  peers: PeerClient;
}

/** What a member says about itself on GET /api/peer/unit. */
export interface UnitReport {
  unit: { id: string; state: string; uptimeSeconds: number; ports: { device: string; linkUp: boolean }[] };
  cluster: { role: string; masterId: string | null; ownedUnits: number; members: number };
  configVersion: { configDigest: string; revision: number };
  services: ServiceView[];
}

export type UnitAnswer = PeerAnswer<UnitReport>;

export interface ServerShare {
  unit: string;
  weight: number;
  activeFlows: number;
  flows: number;
  packets: number;
  bytes: number;
  handshakes: number;
  handshakeMicros: number;
}

export interface ClusterServerView extends ServerView {
  /** Each member's part: its weight and the traffic it handled. */
  units: ServerShare[];
}

export interface ClusterServiceView extends Omit<ServiceView, 'servers'> {
  servers: ClusterServerView[];
}

export interface MemberView {
  id: string;
  address: string;
  self: boolean;
  /** Its cluster role as it reports it; 'unreachable' when its management API did not answer. */
  role: string;
  /** ok: answered and is a member or the master of the cluster. */
  health: 'ok' | 'unreachable' | 'not-joined';
  state: string;
  ownedUnits: number;
  /** Since this unit last heard its keepalive (the master hears every member, a member the master;
   * null for itself and for members it does not watch). */
  lastKeepaliveMsAgo: number | null;
  answeredInMs: number | null;
  configRevision: number | null;
  error?: string;
}

/** This unit and its peers' reports; the own one first. */
export async function gatherUnits(cluster: ClusterContext, own: UnitReport): Promise<UnitAnswer[]> {
  const self = cluster.source.members()[0]!;
  const peers = cluster.source.members().slice(1);
  const answers = await cluster.peers.all<UnitReport>(peers, 'GET', '/api/peer/unit');
  return [{ ...self, ok: true, value: own, answeredInMs: 0 }, ...answers];
}

export function ownedCounts(owners: (string | null)[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const owner of owners) if (owner !== null) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  return counts;
}

export function memberViews(cluster: ClusterContext, answers: UnitAnswer[]): MemberView[] {
  const counts = ownedCounts(cluster.source.owners());
  const heard = cluster.source.lastHeard();
  const now = Date.now();
  return answers.map((answer, index) => {
    const last = index === 0 ? undefined : heard.get(answer.id);
    const base = { id: answer.id, address: answer.address, self: index === 0, ownedUnits: counts.get(answer.id) ?? 0, lastKeepaliveMsAgo: last === undefined ? null : now - last };
    if (!answer.ok) return { ...base, role: 'unreachable', health: 'unreachable', state: 'unknown', answeredInMs: null, configRevision: null, error: answer.error };
    const { value } = answer;
    const joined = value.cluster.role === 'member' || value.cluster.role === 'master';
    return { ...base, role: value.cluster.role, health: joined ? 'ok' : 'not-joined', state: value.unit.state, answeredInMs: answer.answeredInMs, configRevision: value.configVersion.revision };
  });
}

export function clusterSummary(cluster: ClusterContext, answers: UnitAnswer[]) {
  const owners = cluster.source.owners();
  return {
    mode: 'cluster' as const,
    self: cluster.source.unitId,
    role: cluster.source.role(),
    masterId: cluster.source.masterId() ?? null,
    members: memberViews(cluster, answers),
    workUnits: { total: WORK_UNIT_COUNT, unassigned: owners.filter((owner) => owner === null).length, owners },
  };
}

const stateOf = (weight: number, activeFlows: number): ServerState => (weight > 0 ? 'active' : activeFlows > 0 ? 'draining' : 'drained');

/** Services as the asked member defines them, with every member's counters added up. */
export function mergeServices(answers: UnitAnswer[]): ClusterServiceView[] {
  const reports = answers.filter((answer): answer is Extract<UnitAnswer, { ok: true }> => answer.ok);
  const services = new Map<string, ClusterServiceView>();
  for (const { id, value } of reports) {
    for (const service of value.services) {
      let merged = services.get(service.name);
      if (!merged) {
        merged = { ...service, activeFlows: 0, servers: [] };
        services.set(service.name, merged);
      }
      for (const server of service.servers) {
        let row = merged.servers.find((s) => s.server === server.server);
        if (!row) {
          row = { ...server, activeFlows: 0, flows: 0, packets: 0, bytes: 0, handshakes: 0, handshakeMicros: 0, units: [] };
          merged.servers.push(row);
        }
        row.units.push({ unit: id, weight: server.weight, activeFlows: server.activeFlows, flows: server.flows, packets: server.packets, bytes: server.bytes, handshakes: server.handshakes, handshakeMicros: server.handshakeMicros });
        row.activeFlows += server.activeFlows;
        row.flows += server.flows;
        row.packets += server.packets;
        row.bytes += server.bytes;
        row.handshakes += server.handshakes;
        row.handshakeMicros += server.handshakeMicros;
      }
    }
  }
  for (const service of services.values()) {
    for (const row of service.servers) row.state = stateOf(row.weight, row.activeFlows);
    service.activeFlows = service.servers.reduce((sum, row) => sum + row.activeFlows, 0);
  }
  return [...services.values()];
}

/** The members' own connections, each tagged with the member that owns it. */
export function mergeFlows(answers: PeerAnswer<{ count: number; flows: Flow[] }>[], limit: number) {
  const flows = answers.flatMap((answer) => (answer.ok ? answer.value.flows.map((flow) => ({ ...flow, unit: answer.id })) : []));
  return {
    count: answers.reduce((sum, answer) => sum + (answer.ok ? answer.value.count : 0), 0),
    flows: flows.slice(0, limit),
    units: answers.map((answer) => (answer.ok ? { unit: answer.id, count: answer.value.count } : { unit: answer.id, error: answer.error })),
  };
}

type Counters = Record<string, unknown>;

/** Numbers that identify a row rather than count something. */
const IDENTIFIERS = new Set(['id', 'lcore', 'serviceId', 'port', 'weight']);

/** Adds up counters of the same shape: numbers add, lists match by device or service/server. */
export function sumCounters(a: unknown, b: unknown): unknown {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (Array.isArray(a) && Array.isArray(b)) {
    const key = (item: unknown, index: number) => {
      const record = item as Counters;
      if (typeof record?.['device'] === 'string') return `device ${record['device']}`;
      if (typeof record?.['server'] === 'string') return `server ${String(record['service'])}/${record['server']}`;
      return `index ${index}`;
    };
    const merged = new Map(a.map((item, index) => [key(item, index), item]));
    b.forEach((item, index) => {
      const k = key(item, index);
      merged.set(k, merged.has(k) ? sumCounters(merged.get(k), item) : item);
    });
    return [...merged.values()];
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const result: Counters = { ...(a as Counters) };
    for (const [k, v] of Object.entries(b as Counters)) if (!IDENTIFIERS.has(k)) result[k] = k in result ? sumCounters(result[k], v) : v;
    return result;
  }
  return a;
}
