/* One member's flow-state stream to one peer (CL-R9, docs/cluster.md "Flow-state replication"):
 * an outgoing mutual-TLS channel carrying numbered batches, each acknowledged by the peer. A batch
 * that fails or is not acknowledged in time closes the link; on reconnecting, the unacknowledged
 * batches go again first (new session, renumbered from 0), then the bulk resync snapshot. */
import { randomBytes } from 'node:crypto';
import type { VerifiedFlashConfig } from '../../flash-config/index.js';
import type { ControlChannel } from './control-channel.js';
import type { ClusterLog } from './master-role.js';
import { connectControl } from './tls-endpoints.js';

export const FLOWS_METHOD = 'flows';
const pause = () => new Promise((resolve) => setTimeout(resolve, 2));
/** Records per batch: 2048 x 136 bytes in base64 stays well under the channel's 1 MiB frame. */
export const BATCH_RECORDS = 2048;

export interface LinkStats {
  batchesSent: number;
  batchesAcked: number;
  batchesResent: number;
  recordsDropped: number;
  connects: number;
}

export interface LinkOptions {
  config: VerifiedFlashConfig;
  localAddress: string;
  peer: { id: string; address: string; port: number };
  /** Everything this member is authoritative for, sent to the peer after each (re)connection. */
  snapshot: () => Buffer[];
  requestTimeoutMs: number;
  log: ClusterLog;
  stats: LinkStats;
}

export class ReplicationLink {
  private channel: ControlChannel | undefined;
  private connecting = false;
  private session = '';
  private nextSeq = 0;
  /** Sent and not yet acknowledged, by sequence number (in order). */
  private unacked = new Map<number, Buffer>();
  private closed = false;

  constructor(private readonly options: LinkOptions) {}

  get connected(): boolean {
    return this.channel !== undefined;
  }

  /** Connects when down; called periodically by the owner. */
  ensureConnected(): void {
    if (this.channel || this.connecting || this.closed) return;
    this.connecting = true;
    const { config, peer, localAddress, requestTimeoutMs } = this.options;
    connectControl(config, { host: peer.address, port: peer.port, localAddress }, () => Promise.reject(new Error('a replication sender answers no requests')), requestTimeoutMs).then(
      ({ channel, server }) => {
        this.connecting = false;
        if (this.closed || !server.ok || server.peer.unitId !== peer.id) {
          channel.close(this.closed ? 'link closed' : `peer is not ${peer.id}: ${server.ok ? server.peer.unitId : server.reason}`);
          return;
        }
        this.open(channel);
      },
      (error: Error) => {
        this.connecting = false;
        this.options.log('warn', 'replication connect failed', { peer: peer.id, error: error.message });
      },
    );
  }

  /** Queues records for the peer; while the link is down they are dropped (the snapshot on
   * reconnection carries every flow still alive). */
  send(records: readonly Buffer[]): void {
    if (!this.channel) {
      this.options.stats.recordsDropped += records.length;
      return;
    }
    for (let i = 0; i < records.length; i += BATCH_RECORDS) this.sendBatch(Buffer.concat(records.slice(i, i + BATCH_RECORDS)));
  }

  /** Resolves true once the link is up (its resync sent), false at the deadline or on close. */
  async up(deadline: number): Promise<boolean> {
    while (!this.channel) {
      if (this.closed || Date.now() >= deadline) return false;
      this.ensureConnected();
      await pause();
    }
    return true;
  }

  /** Resolves true once the link is up and every batch sent on it so far (after a reconnection:
   * the resent batches and the resync) is acknowledged; false at the deadline or on close. */
  async delivered(deadline: number): Promise<boolean> {
    for (;;) {
      const channel = this.channel;
      if (channel) {
        const sent = this.nextSeq;
        while (this.channel === channel && [...this.unacked.keys()].some((seq) => seq < sent) && Date.now() < deadline) await pause();
        if (this.channel === channel && ![...this.unacked.keys()].some((seq) => seq < sent)) return true;
      }
      if (this.closed || Date.now() >= deadline) return false;
      this.ensureConnected();
      await pause();
    }
  }

  close(): void {
    this.closed = true;
    this.channel?.close('replication link closed');
  }

  private open(channel: ControlChannel): void {
    this.channel = channel;
    this.session = randomBytes(8).toString('hex');
    this.nextSeq = 0;
    this.options.stats.connects += 1;
    channel.onClose((reason) => this.lost(channel, reason));
    const resend = [...this.unacked.values()];
    this.unacked = new Map();
    this.options.stats.batchesResent += resend.length;
    for (const batch of resend) this.sendBatch(batch);
    this.send(this.options.snapshot());
    this.options.log('info', 'replication link up', { peer: this.options.peer.id, resentBatches: resend.length });
  }

  private sendBatch(batch: Buffer): void {
    const channel = this.channel;
    if (!channel) return;
    const seq = this.nextSeq++;
    this.unacked.set(seq, batch);
    this.options.stats.batchesSent += 1;
    channel.request(FLOWS_METHOD, { session: this.session, seq, records: batch.toString('base64') }, this.options.requestTimeoutMs).then(
      () => {
        if (this.channel === channel && this.unacked.delete(seq)) this.options.stats.batchesAcked += 1;
      },
      (error: Error) => channel.close(`batch ${seq} not acknowledged: ${error.message}`),
    );
  }

  private lost(channel: ControlChannel, reason: string): void {
    if (this.channel !== channel) return;
    this.channel = undefined;
    if (!this.closed) this.options.log('warn', 'replication link lost', { peer: this.options.peer.id, reason, unacked: this.unacked.size });
  }
}
