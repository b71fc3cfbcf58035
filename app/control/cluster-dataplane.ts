/* Binds a running cluster Member to the Dataplane (cluster.md CL-R3, R4, R9):
 * - ownership -> the data plane's work-unit table: owned here -> owned; unassigned or moving ->
 *   hold; another member's -> foreign (dropped silently, never answered);
 * - held packets (punt reason 'held') are queued per unit, the unit is reported to the master as
 *   needed, and the queue is released in order when the unit becomes ours (discarded when it
 *   becomes someone else's);
 * - the data plane's flow events go to every other member in batches every `flushMs` (among them
 *   its refreshes of owned connections the peers' copies would otherwise outlive), and peers'
 *   records are installed here, so a unit that moves here brings its connections' state along. */
import type { VerifiedFlashConfig } from '../../flash-config/index.js';
import { TableFullError, type Dataplane, type PuntedPacket, type UnitEntry, type UnitState } from '../../firmware/dataplane.js';
import type { Member } from '../cluster/member.js';
import { FlowReplication } from '../cluster/flow-replication.js';
import type { ClusterLog, PeerAddress } from '../cluster/master-role.js';
import { WORK_UNITS, type OwnershipChange, type UnitLoad } from '../cluster/work-units.js';
import { FLOW_RECORD_BYTES, FlowBook, isDeletion, isRefresh, recordUnit, splitRecords } from './cluster-flow-book.js';
import { FlowImporter } from './cluster-flow-import.js';
import { ClusterDelivery, type DeliveryMode } from './cluster-delivery.js';
import type { ClusterAddresses } from './cluster-garp.js';
import { HoldQueue, type HeldPacket } from './cluster-hold-queue.js';

export interface ClusterDataplaneOptions {
  member: Member;
  dp: Dataplane;
  /** The member's flash config and cluster address: the replication channel's TLS identity. */
  config: VerifiedFlashConfig;
  address: string;
  replication: { port: number; flushMs?: number };
  /** The shared addresses: answered for ARP as the delivery mode says, announced by gratuitous ARP
   * whenever this member takes or keeps mastership (CL-R2). */
  clusterAddresses?: ClusterAddresses[];
  /** Default unicast-mac. */
  delivery?: DeliveryMode;
  log: ClusterLog;
}

const REPORT_AGAIN_MS = 250;
/** How long a unit moving away waits for the workers' bursts in flight before its last flush. */
const IN_FLIGHT_MS = 25;
/** How often the book drops records whose time is up (a scan of the whole book). */
const BOOK_PRUNE_MS = 5000;

export function unitState(entry: OwnershipChange): UnitState {
  if (entry.state === 'owned') return 'owned';
  return entry.state === 'holding' || entry.owner === null ? 'hold' : 'foreign';
}

export class ClusterDataplane {
  readonly held = new HoldQueue();
  readonly book = new FlowBook();
  readonly replication: FlowReplication;
  readonly importer: FlowImporter;
  readonly delivery: ClusterDelivery;
  /** Packets released to the data plane after their unit became ours, and when the last was. */
  released = { packets: 0, lastAt: 0 };
  /** Records the data plane sent again to refresh the peers' copies of owned connections. */
  refreshesSent = 0;
  private readonly states: UnitState[] = Array<UnitState>(WORK_UNITS).fill('hold');
  /** Units now ours that the data plane still holds: peers' records wait for its command ring (the
   * held packets must find the imported connections). */
  private readonly releasing = new Set<number>();
  /** Units ours in the data plane whose held packets did not all fit its injection queue yet. */
  private readonly backlog = new Set<number>();
  /** Until this unit first joins (or founds) the cluster it takes no part: packets of units it does
   * not own are dropped, not held (the members forward them; holding them all would only flood the
   * hold queue and this process). */
  private inCluster = false;
  /** Units this member is releasing: its flow state for them is still its to send (a link that
   * comes up now must carry them in its resync, though the units are no longer owned here). */
  private readonly handingOver = new Set<number>();
  private readonly reported = new Map<number, number>();
  private lastPackets = new Float64Array(WORK_UNITS);
  private timer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ClusterDataplaneOptions) {
    if (options.dp.flowRecordSize !== FLOW_RECORD_BYTES) {
      throw new Error(`the data plane's flow records are ${options.dp.flowRecordSize} bytes, this binding reads ${FLOW_RECORD_BYTES}`);
    }
    const { member } = options;
    this.importer = new FlowImporter(options.dp);
    this.delivery = new ClusterDelivery(options.dp, options.delivery ?? 'unicast-mac', options.clusterAddresses ?? [], options.log);
    this.replication = new FlowReplication({
      config: options.config,
      address: options.address,
      port: options.replication.port,
      peers: () => member.peers(),
      snapshot: () => this.book.of(new Set([...member.ownership().filter((entry) => entry.state === 'owned').map((entry) => entry.unit), ...this.handingOver])),
      receive: (_from, records) => this.install(records),
      requestTimeoutMs: member.timing.requestTimeoutMs,
      log: options.log,
    });
  }

  /** Per-unit load for the master's rebalancing: packets since the last call, connections now. */
  loadSource(): UnitLoad[] {
    const { packets, flows } = this.options.dp.unitLoads();
    const loads: UnitLoad[] = [];
    for (let unit = 0; unit < WORK_UNITS; unit += 1) {
      const delta = (packets[unit] ?? 0) - (this.lastPackets[unit] ?? 0);
      if (delta > 0 || (flows[unit] ?? 0) > 0) loads.push({ unit, packets: Math.max(0, delta), flows: flows[unit] ?? 0 });
    }
    this.lastPackets = Float64Array.from(packets);
    return loads;
  }

  /** Call before member.start(): once in the cluster, every unit is held until the cluster says who owns it. */
  async start(): Promise<void> {
    const { dp, member } = this.options;
    this.delivery.start();
    this.applyStates();
    member.onOwnershipChange((changes) => this.ownershipChanged(changes));
    member.onRoleChange((role) => {
      const wasForwarding = this.delivery.forwarding;
      this.delivery.roleChanged(role === 'master');
      if (!this.inCluster && (role === 'member' || role === 'master')) this.inCluster = true;
      else if (this.delivery.forwarding === wasForwarding) return;
      this.applyStates();
      // A new master in forwarding delivery passes on what it held for units other members own.
      if (this.delivery.forwarding) for (const entry of member.ownership()) if (this.states[entry.unit] === 'foreign') this.backlog.add(entry.unit);
      this.releaseHeld();
    });
    member.setReleaseBarrier((units, next) => this.handedOver(units, next));
    member.onAnnounce(() => this.delivery.announce());
    dp.onPunt((packet) => this.punted(packet));
    dp.enableReplication(true);
    await this.replication.start();
    this.timer = setInterval(() => this.flush(), this.options.replication.flushMs ?? 20);
    this.pruneTimer = setInterval(() => this.book.prune(), BOOK_PRUNE_MS);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.pruneTimer);
    this.options.dp.enableReplication(false);
    await this.replication.stop();
  }

  private ownershipChanged(changes: OwnershipChange[]): void {
    // A unit moving away: its latest flow events go out now, before the move is acknowledged, so
    // the next owner has them when it is assigned the unit.
    if (changes.some((change) => this.states[change.unit] === 'owned' && change.state !== 'owned')) this.flush();
    for (const change of changes) {
      this.states[change.unit] = unitState(change);
      this.reported.delete(change.unit);
      if (this.states[change.unit] === 'owned') this.releasing.add(change.unit);
      else {
        this.releasing.delete(change.unit);
        this.backlog.delete(change.unit);
      }
      // Held packets of a unit another member now owns: that member has them too (MAC delivery), or
      // this master passes them on to it, in order (forwarding delivery).
      if (this.states[change.unit] === 'foreign') {
        if (this.delivery.forwarding) this.backlog.add(change.unit);
        else this.held.take(change.unit);
      }
    }
    this.applyStates();
    this.releaseHeld();
  }

  private applyStates(): void {
    const ownership = this.delivery.forwarding ? this.options.member.ownership() : undefined;
    const macs = ownership ? this.options.member.memberDataMacs() : undefined;
    this.options.dp.setWorkUnits(
      this.states.map((state, unit): UnitEntry => {
        if (this.releasing.has(unit)) return 'hold';
        if (state === 'foreign' && ownership) {
          const owner = ownership[unit]?.owner;
          return this.delivery.foreignEntry(owner ? macs?.get(owner) : undefined);
        }
        return state === 'hold' && !this.inCluster ? 'foreign' : state;
      }),
    );
  }

  /** Units now ours take their traffic once the peers' records are all queued to the data plane;
   * their held packets go back to it right after, in order. */
  private releaseHeld(): void {
    if (this.releasing.size > 0 && this.importer.pump()) {
      const units = [...this.releasing];
      this.releasing.clear();
      this.applyStates();
      for (const unit of units) this.backlog.add(unit);
    }
    // One log line per release, not per unit: a takeover releases hundreds of units at once, and a
    // flood of lines blocks the process on a slow console (a TCG guest's serial port).
    const released: number[] = [];
    let releasedPackets = 0;
    for (const unit of this.backlog) {
      const packets = this.held.take(unit);
      const injected = this.inject(packets);
      if (injected > 0) {
        released.push(unit);
        releasedPackets += injected;
      }
      if (injected < packets.length) {
        // The data plane's queue of injected frames is full: the rest goes on the next tick.
        this.held.putBack(unit, packets.slice(injected));
        break;
      }
      this.backlog.delete(unit);
    }
    if (released.length > 0) {
      this.released = { packets: this.released.packets + releasedPackets, lastAt: Date.now() };
      this.options.log('info', 'held packets released', { units: released, packets: releasedPackets });
    }
  }

  /** Hands frames back to the data plane for processing; returns how many it took. */
  private inject(packets: readonly HeldPacket[]): number {
    let injected = 0;
    for (const packet of packets) {
      try {
        this.options.dp.injectForProcessing(packet.port, packet.frame);
      } catch (error) {
        if (error instanceof TableFullError) break;
        throw error;
      }
      injected += 1;
    }
    return injected;
  }

  /** A unit moving away is acknowledged to the master only when the peers hold its flows' latest
   * records, and the next owner all of them: it then continues every connection, including ones
   * opened just now and ones older than its replication link from here (a link that came up while
   * the unit was on its way here or away carries no resync of it). */
  private async handedOver(units: readonly number[], next?: PeerAddress): Promise<boolean> {
    if (units.length === 0) return true;
    for (const unit of units) this.handingOver.add(unit);
    try {
      // A worker may be in a burst that passed the unit check before the table said "not ours": the
      // flows it creates show up a moment later. Wait out such a burst (generously: a loaded host
      // deschedules the worker), then ship what it produced.
      this.flush();
      await new Promise((resolve) => setTimeout(resolve, IN_FLIGHT_MS));
      this.flush();
      // One budget for both steps: the master's request waits requestTimeoutMs for the answer.
      const deadline = Date.now() + this.options.member.timing.requestTimeoutMs / 2;
      const resynced = next === undefined || next.address === this.options.address || (await this.replication.sendTo(next, this.book.of(new Set(units)), deadline - Date.now()));
      const delivered = await this.replication.delivered(Math.max(0, deadline - Date.now()));
      if (resynced && delivered) return true;
      this.options.log('warn', 'release refused: the flow state was not acknowledged in time', { units: units.length, next: next?.id, resynced, delivered });
      return false;
    } finally {
      for (const unit of units) this.handingOver.delete(unit);
    }
  }

  private punted(packet: PuntedPacket): void {
    if (packet.reason !== 'held') return;
    const unit = packet.unit;
    // Punted before the unit went to another member: that member forwards it (held now, it would be
    // replayed, long stale, if the unit ever came back here); a master in forwarding delivery passes
    // it on to that member.
    if (this.states[unit] === 'foreign') {
      if (this.delivery.forwarding) this.inject([{ port: packet.port, frame: packet.frame }]);
      return;
    }
    // A packet punted just before the table said "owned" is not held again: it goes through now
    // (or waits behind the unit's held packets if the data plane's queue is full).
    const held = { port: packet.port, frame: packet.frame };
    if (this.states[unit] === 'owned' && !this.releasing.has(unit)) {
      if (!this.backlog.has(unit) && this.inject([held]) === 1) return;
      this.backlog.add(unit);
    }
    this.held.hold(unit, held);
    const entry = this.options.member.ownership()[unit];
    const last = this.reported.get(unit) ?? 0;
    if (entry?.owner === null && entry.state === 'foreign' && Date.now() - last >= REPORT_AGAIN_MS) {
      this.reported.set(unit, Date.now());
      // A closed channel fails every waiting report at once when the master goes (the member logs
      // that once); other failures are worth a line each.
      this.options.member.reportUnassigned([unit]).catch((error: Error) => {
        if (!error.message.startsWith('channel closed')) this.options.log('warn', 'unit report failed', { unit, error: error.message });
      });
    }
  }

  /** Ships the data plane's new flow events to the peers and follows membership. */
  private flush(): void {
    this.releaseHeld();
    this.replication.syncPeers();
    for (;;) {
      const batch = this.options.dp.takeFlowEvents();
      if (batch.length === 0) return;
      const now = Date.now();
      const spoken: Buffer[] = [];
      for (const record of splitRecords(batch)) {
        // Only an owner speaks for a connection: the idle expiry of a replicated copy of another
        // member's connection makes neither that member nor this one's book forget it.
        if (isDeletion(record) && this.states[recordUnit(record)] !== 'owned') {
          this.book.copyExpired(record, now);
          continue;
        }
        this.book.apply([record], now);
        if (isRefresh(record)) this.refreshesSent += 1;
        spoken.push(record);
      }
      this.replication.send(spoken);
    }
  }

  /** A peer's records: kept for later resyncs and handed to the data plane in order. */
  private install(batch: Buffer): void {
    const records = splitRecords(batch);
    this.book.apply(records);
    this.importer.add(records);
    this.releaseHeld();
  }
}
