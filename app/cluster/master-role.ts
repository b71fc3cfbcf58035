/* What a unit does while it is master: admits joiners (certificate already checked by TLS, then
 * identity, address, signed policy, application vetoes; a higher valid policy version is adopted), watches members by their
 * keepalives, sends master keepalives with the member list, table and leases, assigns and
 * rebalances work units, leases numbers, and settles split brain with another master. */
import type { CertifiedUnit, VerifiedFlashConfig } from '../../flash-config/index.js';
import { policyToWire, verifyWirePolicy, type ClusterPolicy, type VerifiedPolicy } from './cluster-policy.js';
import { FinalRefusal, RequestTimedOut, type ControlChannel } from './control-channel.js';
import { outranks } from './election.js';
import { LossEstimate, MIN_INTERVALS } from './keepalive-loss.js';
import type { ClusterMessage, Lease } from './messages.js';
import { LeaseBook, type NumberSpace } from './numbering.js';
import type { OwnershipView } from './ownership-view.js';
import { parseParams, parseResult, type Params, type Result } from './rpc-methods.js';
import type { ReceivedMessage } from './message-guard.js';
import type { ClusterTiming } from './timing.js';
import { connectControl } from './tls-endpoints.js';
import { encodeTable, unitWeight, WorkUnitAuthority, type UnitLoad } from './work-units.js';

export type ClusterLog = (level: 'info' | 'warn', event: string, fields?: Record<string, unknown>) => void;

export interface JoinCandidate {
  unitId: string;
  address: string;
  configVersion: number;
}
/** An application's say on a join: a reason refuses it. */
export type JoinVeto = (candidate: JoinCandidate) => string | undefined | Promise<string | undefined>;

/** How many request timeouts a unit move step may take before the master gives it up. */
const MOVE_STEP_ATTEMPTS = 3;

/** A member as the replication links reach it. */
export interface PeerAddress {
  id: string;
  address: string;
}

export interface MasterContext {
  config: VerifiedFlashConfig;
  selfId: string;
  selfAddress: string;
  joinPort: number;
  /** The policy the cluster runs; a joiner's higher valid version replaces it. */
  policy: ClusterPolicy;
  timing: ClusterTiming;
  clusterKey: Buffer;
  view: OwnershipView;
  vetoes: readonly JoinVeto[];
  numberSpaces: ReadonlyMap<string, NumberSpace>;
  send(message: ClusterMessage): void;
  log: ClusterLog;
  loadSource(): UnitLoad[];
  /** Lost the tie-break to another master: step down and rejoin. */
  stepDown(reason: string): void;
  /** Resolves true when what this unit knows of released units has reached the other members, and
   * all of their flow state the next owner; false when that did not happen in time (the units stay). */
  releaseBarrier(units: readonly number[], next?: PeerAddress): Promise<boolean>;
  /** We stay master after a tie-break with another master: announce the cluster addresses again. */
  announce(reason: string): void;
}

/** State a new master inherits from the keepalives it saw as a member. */
export interface Inheritance {
  owners: readonly (string | null)[];
  leases: readonly Lease[];
  ownedUnits: readonly number[];
}

interface MemberRecord {
  address: string;
  /** Its data-port MACs by port id (join request). */
  dataMacs: string[];
  channel: ControlChannel;
  lastHeard: number;
  loss: LossEstimate;
  loads: Map<number, UnitLoad>;
}

export class MasterRole {
  readonly members = new Map<string, MemberRecord>();
  readonly authority: WorkUnitAuthority;
  readonly leases: LeaseBook;
  private readonly settledAt: number;
  private settled = false;
  private lastKeepalive = 0;
  private lastBeacon = 0;
  private lastRebalance: number;
  private lastCompare = 0;
  private rebalancing = false;
  private stopped = false;

  constructor(
    private readonly ctx: MasterContext,
    inherited: Inheritance,
    now: number,
  ) {
    this.authority = new WorkUnitAuthority(
      {
        hold: (member, units) => this.exchange(member, 'hold-units', units),
        release: (member, units, next) => this.exchange(member, 'release-units', units, next),
        assign: (member, units) => this.exchange(member, 'assign-units', units),
      },
      (units) => this.refreshView(units),
      (member) => member === this.ctx.selfId || this.members.has(member),
    );
    const mine = new Set(inherited.ownedUnits);
    inherited.owners.forEach((owner, unit) => this.authority.set(unit, mine.has(unit) ? ctx.selfId : owner === ctx.selfId ? null : owner));
    for (const unit of mine) this.authority.set(unit, ctx.selfId);
    this.leases = new LeaseBook(ctx.numberSpaces, ctx.timing.leaseGraceMs);
    this.leases.adopt(inherited.leases);
    // Members of the old master get time to rejoin before their units and leases are released.
    const heir = inherited.owners.some((owner) => owner !== null && owner !== ctx.selfId) || inherited.leases.length > 0;
    this.settledAt = now + (heir ? 2 * ctx.timing.detectionMs : 0);
    this.lastRebalance = now;
    this.refreshView(Array.from({ length: 1024 }, (_, unit) => unit));
  }

  get memberCount(): number {
    return this.members.size + 1;
  }

  stop(reason: string): void {
    this.stopped = true;
    for (const record of this.members.values()) record.channel.close(reason);
    this.members.clear();
  }

  /** A request from a unit over TLS (its certificate already verified). */
  async handle(peer: CertifiedUnit, channel: ControlChannel, method: string, params: unknown): Promise<unknown> {
    if (method === 'join') return this.admit(peer, channel, parseParams('join', params));
    if (method === 'compare') return this.answerCompare(parseParams('compare', params));
    if (method === 'policy') return policyToWire(this.ctx.policy.signed);
    const record = this.members.get(peer.unitId);
    if (!record || record.channel !== channel) throw new FinalRefusal(`${peer.unitId} is not a member: join first`);
    switch (method) {
      case 'need-units':
        void this.needUnits(parseParams('need-units', params).units);
        return null;
      case 'load':
        record.loads = new Map(parseParams('load', params).units.map((load) => [load.unit, load]));
        return null;
      case 'lease':
        return this.grant(parseParams('lease', params).space, peer.unitId);
      case 'release-lease': {
        const { space, start } = parseParams('release-lease', params);
        this.leases.release(space, start, peer.unitId);
        return null;
      }
      default:
        throw new Error(`unknown request '${method}'`);
    }
  }

  onMessage(received: ReceivedMessage, now: number): void {
    const { message, senderId, senderAddress } = received;
    switch (message.name) {
      case 'discover':
        this.ctx.send({ name: 'master-announce', body: this.claim() });
        return;
      case 'offer':
        this.ctx.send({ name: 'other-master-exists', body: this.claim() });
        return;
      case 'client-keepalive': {
        const record = this.members.get(senderId);
        if (!record) {
          this.ctx.send({ name: 'exit-cluster', body: { target: senderId, reason: 'not a member of this master: rejoin' } });
          return;
        }
        record.lastHeard = now;
        record.loss.observe(received.sequence);
        return;
      }
      case 'master-announce':
      case 'other-master-exists':
        this.compareWith(senderId, senderAddress, message.body.joinPort, now);
        return;
      case 'master-keepalive':
        this.compareWith(senderId, senderAddress, message.body.joinPort, now);
        return;
      case 'exit-cluster':
        return;
    }
  }

  tick(now: number): void {
    if (this.stopped) return;
    for (const [id, record] of this.members) {
      if (now - record.lastHeard > this.ctx.timing.detectionMs) this.removeMember(id, `no keepalive for ${now - record.lastHeard} ms`, now);
    }
    if (!this.settled && now >= this.settledAt) this.settle(now);
    for (const lease of this.leases.expire(now)) this.ctx.log('info', 'lease grace ended', { ...lease });
    const intervals = Math.max(MIN_INTERVALS, ...[...this.members.values()].map((record) => record.loss.intervals));
    if (now - this.lastKeepalive >= Math.min(this.ctx.timing.keepaliveMs, this.ctx.timing.detectionMs / intervals)) this.sendKeepalive(now);
    if (now - this.lastBeacon >= this.ctx.timing.detectionMs) {
      this.lastBeacon = now;
      this.ctx.send({ name: 'master-announce', body: this.claim() });
    }
    if (this.settled && !this.rebalancing && now - this.lastRebalance >= this.ctx.timing.rebalanceMs) {
      this.lastRebalance = now;
      void this.rebalance();
    }
  }

  /** The data plane saw packets for units nobody owns (first use): assign them to the least loaded. */
  async needUnits(units: readonly number[]): Promise<void> {
    if (!this.settled) return;
    await this.authority.assign(units, this.memberIds(), (unit) => this.weight(unit));
  }

  grant(space: string, holder: string): Lease {
    if (!this.settled) throw new Error('busy: the new master is waiting for members to rejoin before leasing');
    const lease = this.leases.grant(space, holder);
    this.sendKeepalive(Date.now());
    this.ctx.log('info', 'lease granted', { ...lease });
    return lease;
  }

  private claim() {
    return { joinPort: this.ctx.joinPort, memberCount: this.memberCount, configVersion: this.ctx.policy.version };
  }

  private memberIds(): string[] {
    return [this.ctx.selfId, ...this.members.keys()];
  }

  private weight(unit: number): number {
    const owner = this.authority.owners[unit];
    if (owner === this.ctx.selfId) return unitWeight(this.ownLoads.get(unit));
    return unitWeight(owner ? this.members.get(owner)?.loads.get(unit) : undefined);
  }

  private ownLoads = new Map<number, UnitLoad>();

  private async rebalance(): Promise<void> {
    this.rebalancing = true;
    this.ownLoads = new Map(this.ctx.loadSource().map((load) => [load.unit, load]));
    try {
      const moves = await this.authority.rebalance(this.memberIds(), (unit) => this.weight(unit), this.ctx.timing.maxMovesPerRound);
      if (moves.length > 0) this.ctx.log('info', 'rebalanced', { moves: moves.length });
    } finally {
      this.rebalancing = false;
    }
  }

  private settle(now: number): void {
    this.settled = true;
    const present = new Set(this.memberIds());
    const absent = new Set([...this.authority.owners, ...this.leases.all().map((lease) => lease.holder)].filter((id): id is string => id !== null && !present.has(id)));
    for (const id of absent) {
      this.authority.forget(id);
      this.leases.holderGone(id, now);
    }
    this.ctx.log('info', 'master settled', { members: this.memberCount, absentOwners: [...absent] });
  }

  private async admit(peer: CertifiedUnit, channel: ControlChannel, request: Params<'join'>): Promise<Result<'join'>> {
    const refuse = (reason: string): never => {
      this.ctx.log('warn', 'join refused', { unit: peer.unitId, address: request.address, reason });
      throw new FinalRefusal(reason);
    };
    if (request.unitId !== peer.unitId) refuse(`join request names unit '${request.unitId}' but the certificate is for '${peer.unitId}'`);
    if (!peer.addresses.includes(request.address)) refuse(`address ${request.address} is not in the certificate (${peer.addresses.join(', ')})`);
    if (request.unitId === this.ctx.selfId) refuse('unit id is the master\'s own');
    let offered: VerifiedPolicy | undefined;
    try {
      offered = verifyWirePolicy(this.ctx.config, request.policy);
    } catch (error) {
      refuse(`invalid signed policy: ${(error as Error).message}`);
    }
    if (offered?.policy.configVersion !== request.configVersion) {
      refuse(`join claims configuration version ${request.configVersion} but its signed policy is version ${offered?.policy.configVersion}`);
    }
    for (const veto of this.ctx.vetoes) {
      const reason = await veto({ unitId: request.unitId, address: request.address, configVersion: request.configVersion });
      if (reason !== undefined) refuse(`vetoed by application: ${reason}`);
    }
    const previous = this.ctx.policy.version;
    if (offered && this.ctx.policy.adopt(offered, request.unitId)) {
      this.ctx.log('info', 'policy adopted', { configVersion: offered.policy.configVersion, previous, from: request.unitId });
    }
    this.members.get(request.unitId)?.channel.close('replaced by a new join of the same unit');
    this.members.set(request.unitId, { address: request.address, dataMacs: request.dataMacs, channel, lastHeard: Date.now(), loss: new LossEstimate(), loads: new Map() });
    channel.onClose((reason) => {
      if (this.members.get(request.unitId)?.channel === channel) this.removeMember(request.unitId, reason, Date.now());
    });
    for (const unit of request.ownedUnits) if (this.authority.owners[unit] === null) this.authority.set(unit, request.unitId);
    // Units the table gives the joiner that it does not hold (it released them in a move the old
    // master did not finish) return to the pool; otherwise nobody would ever take their packets.
    const claimed = new Set(request.ownedUnits);
    for (const unit of this.authority.ownedBy(request.unitId)) if (!claimed.has(unit)) this.authority.set(unit, null);
    const release = request.ownedUnits.filter((unit) => this.authority.owners[unit] !== request.unitId);
    const refusedLeases = this.leases.adopt(request.leases);
    this.leases.holderBack(request.unitId);
    this.ctx.log('info', 'member admitted', { unit: request.unitId, address: request.address, members: this.memberCount });
    this.sendKeepalive(Date.now());
    return { clusterKey: this.ctx.clusterKey.toString('base64'), masterId: this.ctx.selfId, release, refusedLeases, policy: policyToWire(this.ctx.policy.signed) };
  }

  private removeMember(id: string, reason: string, now: number): void {
    const record = this.members.get(id);
    if (!record) return;
    this.members.delete(id);
    // If the member is alive it must give up its units: they are about to be reassigned.
    record.channel.notifyAndClose('exit-cluster', { reason: `removed by the master: ${reason}` }, `removed: ${reason}`);
    const freed = this.authority.forget(id);
    this.leases.holderGone(id, now);
    this.ctx.log('warn', 'member lost', { unit: id, reason, freedUnits: freed.length, members: this.memberCount });
  }

  private sendKeepalive(now: number): void {
    this.lastKeepalive = now;
    const members = [
      { id: this.ctx.selfId, address: this.ctx.selfAddress, intervals: MIN_INTERVALS },
      ...[...this.members].map(([id, record]) => ({ id, address: record.address, intervals: record.loss.intervals })),
    ];
    this.ctx.send({
      name: 'master-keepalive',
      body: {
        joinPort: this.ctx.joinPort,
        configVersion: this.ctx.policy.version,
        members,
        table: encodeTable(this.authority.owners, members.map((member) => member.id)),
        leases: this.leases.all(),
      },
    });
  }

  private refreshView(units: readonly number[]): void {
    this.ctx.view.update(
      units.map((unit) => {
        const owner = this.authority.owners[unit] ?? null;
        if (this.authority.isBusy(unit)) return { unit, owner, state: 'holding' as const };
        return { unit, owner, state: owner === this.ctx.selfId ? ('owned' as const) : ('foreign' as const) };
      }),
    );
  }

  private async exchange(member: string, method: 'hold-units' | 'release-units' | 'assign-units', units: number[], nextId?: string): Promise<number[]> {
    const nextAddress = nextId === undefined ? undefined : nextId === this.ctx.selfId ? this.ctx.selfAddress : this.members.get(nextId)?.address;
    const next = nextId !== undefined && nextAddress !== undefined ? { id: nextId, address: nextAddress } : undefined;
    if (member === this.ctx.selfId) {
      // The master's own view already holds busy units; a release waits for its flow state.
      if (method === 'release-units' && !(await this.ctx.releaseBarrier(units, next))) return [];
      return units;
    }
    // A step without an answer may still have been carried out (a starved member answers late): ask
    // again - the steps are idempotent - rather than guess, or the member and the table would
    // disagree on who owns the units (two owners after a lost assign answer).
    const deadline = Date.now() + MOVE_STEP_ATTEMPTS * this.ctx.timing.requestTimeoutMs;
    for (;;) {
      const record = this.members.get(member);
      if (!record) return [];
      try {
        return parseResult(method, await record.channel.request(method, next ? { units, next } : { units }, this.ctx.timing.requestTimeoutMs)).units;
      } catch (error) {
        this.ctx.log('warn', 'unit move step failed', { member, method, units: units.length, error: (error as Error).message });
        if (!(error instanceof RequestTimedOut) || this.stopped || this.members.get(member) !== record || Date.now() >= deadline) throw error;
      }
    }
  }

  private answerCompare(other: Params<'compare'>): Result<'compare'> {
    const mine = { memberCount: this.memberCount, address: this.ctx.selfAddress };
    if (outranks(other, mine)) setImmediate(() => this.ctx.stepDown(`other master ${other.address} has ${other.memberCount} members (we have ${mine.memberCount})`));
    else setImmediate(() => this.ctx.announce(`won the tie-break against ${other.address}`));
    return mine;
  }

  /** Two masters see each other: ask the other over mutual TLS, the loser steps down and rejoins. */
  private compareWith(otherId: string, otherAddress: string, joinPort: number, now: number): void {
    if (otherId === this.ctx.selfId || now - this.lastCompare < this.ctx.timing.detectionMs) return;
    this.lastCompare = now;
    const mine = { memberCount: this.memberCount, address: this.ctx.selfAddress };
    connectControl(this.ctx.config, { host: otherAddress, port: joinPort, localAddress: this.ctx.selfAddress }, () => Promise.reject(new Error('no requests')), this.ctx.timing.requestTimeoutMs)
      .then(async ({ channel, server }) => {
        try {
          if (!server.ok) {
            this.ctx.log('warn', 'other master refused', { address: otherAddress, reason: server.reason });
            return;
          }
          const theirs = parseResult('compare', await channel.request('compare', mine, this.ctx.timing.requestTimeoutMs));
          this.ctx.log('info', 'other master exists', { other: otherId, theirs, mine });
          if (this.stopped) return;
          if (outranks(theirs, mine)) this.ctx.stepDown(`other master ${otherId} outranks us (${theirs.memberCount} vs ${mine.memberCount} members)`);
          else this.ctx.announce(`won the tie-break against ${otherId}`);
        } finally {
          channel.close('compare done');
        }
      })
      .catch((error: unknown) => this.ctx.log('warn', 'master compare failed', { other: otherId, error: (error as Error).message }));
  }
}
