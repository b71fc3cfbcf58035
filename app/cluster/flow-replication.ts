/* Flow-state replication between members (CL-R9, docs/cluster.md "Flow-state replication"): every
 * member streams its connections' records to every other member over a link of its own
 * (replication-link.ts) and receives theirs on a mutual-TLS server. Receiving: batches of one
 * session are applied once, in sequence order; a repeated batch is acknowledged again, a gap refused. */
import type { Server } from 'node:tls';
import { z } from 'zod';
import type { VerifiedFlashConfig } from '../../flash-config/index.js';
import type { ClusterLog, PeerAddress } from './master-role.js';
import { FLOWS_METHOD, ReplicationLink, type LinkStats } from './replication-link.js';
import { startControlServer } from './tls-endpoints.js';

const batchSchema = z.strictObject({ session: z.string().max(32), seq: z.int().min(0), records: z.base64() });

export interface ReplicationStats extends LinkStats {
  batchesReceived: number;
  batchesRepeated: number;
  bytesReceived: number;
}

export interface FlowReplicationOptions {
  config: VerifiedFlashConfig;
  address: string;
  /** TCP port of every member's replication server. */
  port: number;
  /** The current other members. */
  peers: () => PeerAddress[];
  snapshot: () => Buffer[];
  /** A peer's records, in the order it produced them; the batch is acknowledged after this returns. */
  receive: (from: string, records: Buffer) => void;
  requestTimeoutMs: number;
  log: ClusterLog;
}

export class FlowReplication {
  readonly stats: ReplicationStats = { batchesSent: 0, batchesAcked: 0, batchesResent: 0, recordsDropped: 0, connects: 0, batchesReceived: 0, batchesRepeated: 0, bytesReceived: 0 };
  private readonly links = new Map<string, ReplicationLink>();
  /** Per sending unit: its current session and the next sequence number expected. */
  private readonly sessions = new Map<string, { session: string; expected: number }>();
  /** Next owners of units being handed over that this member's view of the membership may not
   * list yet (the master admitted them a moment ago): linked until the deadline all the same. */
  private readonly pinned = new Map<string, { peer: PeerAddress; until: number }>();
  private server: Server | undefined;

  constructor(private readonly options: FlowReplicationOptions) {}

  async start(): Promise<void> {
    this.server = await startControlServer({
      config: this.options.config,
      host: this.options.address,
      port: this.options.port,
      accept: (peer) => (method, params) => this.handle(peer.unitId, method, params),
      refused: (reason, remoteAddress) => this.options.log('warn', 'replication peer refused', { address: remoteAddress, reason }),
    });
  }

  /** Follows membership: links to new peers (they get the snapshot), closes links to gone ones. */
  syncPeers(): void {
    const now = Date.now();
    for (const [id, { until }] of this.pinned) if (until <= now) this.pinned.delete(id);
    const peers = this.options.peers();
    for (const { peer } of this.pinned.values()) if (!peers.some((known) => known.id === peer.id)) peers.push(peer);
    for (const [id, link] of this.links) {
      if (!peers.some((peer) => peer.id === id)) {
        link.close();
        this.links.delete(id);
      }
    }
    for (const peer of peers) {
      let link = this.links.get(peer.id);
      if (!link) {
        link = new ReplicationLink({
          config: this.options.config,
          localAddress: this.options.address,
          peer: { ...peer, port: this.options.port },
          snapshot: this.options.snapshot,
          requestTimeoutMs: this.options.requestTimeoutMs,
          log: this.options.log,
          stats: this.stats,
        });
        this.links.set(peer.id, link);
      }
      link.ensureConnected();
    }
  }

  send(records: readonly Buffer[]): void {
    if (records.length === 0) return;
    for (const link of this.links.values()) link.send(records);
  }

  /** Records for one peer only (the next owner of units handed over: their whole state), on its
   * link after what was sent to it before; the link comes up first if it is not up yet. */
  async sendTo(peer: PeerAddress, records: readonly Buffer[], timeoutMs: number): Promise<boolean> {
    this.pinned.set(peer.id, { peer, until: Date.now() + 3 * this.options.requestTimeoutMs });
    this.syncPeers();
    const link = this.links.get(peer.id);
    if (!link || !(await link.up(Date.now() + timeoutMs))) return false;
    link.send(records);
    return true;
  }

  /** Whether every current peer, a new one included once its link is up, acknowledged everything
   * sent to it so far, within timeoutMs. */
  async delivered(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    this.syncPeers();
    const results = await Promise.all([...this.links.values()].map((link) => link.delivered(deadline)));
    return results.every(Boolean);
  }

  connectedPeers(): string[] {
    return [...this.links].filter(([, link]) => link.connected).map(([id]) => id);
  }

  async stop(): Promise<void> {
    for (const link of this.links.values()) link.close();
    this.links.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async handle(from: string, method: string, params: unknown): Promise<unknown> {
    if (method !== FLOWS_METHOD) throw new Error(`unknown replication request '${method}'`);
    if (!this.options.peers().some((peer) => peer.id === from)) throw new Error(`${from} is not a member here`);
    const batch = batchSchema.parse(params);
    let state = this.sessions.get(from);
    if (!state || state.session !== batch.session) {
      state = { session: batch.session, expected: 0 };
      this.sessions.set(from, state);
    }
    if (batch.seq < state.expected) {
      this.stats.batchesRepeated += 1;
      return { seq: batch.seq };
    }
    if (batch.seq > state.expected) throw new Error(`batch ${batch.seq} of session ${batch.session}: expected ${state.expected}`);
    const records = Buffer.from(batch.records, 'base64');
    this.options.receive(from, records);
    state.expected += 1;
    this.stats.batchesReceived += 1;
    this.stats.bytesReceived += records.length;
    return { seq: batch.seq };
  }
}
