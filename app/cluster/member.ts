/* A cluster member's state machine (CL-R5..R7, R10; docs/cluster.md "States"):
 *   discovering --announce--> joining --OK--> member
 *   discovering --silence--> offering --silence--> master      (a better offer -> discovering)
 *   joining --NAK--> refused --retry time--> discovering
 *   member --master silent / exit-cluster / channel lost--> discovering
 *   master --other master outranks us--> discovering
 * Multicast carries discovery, offers and keepalives; joins, unit moves, leases and the signed
 * policy use mutual TLS. */
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:tls';
import { pino } from 'pino';
import type { CertifiedUnit, Policy, VerifiedFlashConfig } from '../../flash-config/index.js';
import { ClusterPolicy, policyToWire, verifyWirePolicy, type PolicyListener, type VerifiedPolicy } from './cluster-policy.js';
import { FinalRefusal, RequestRefused, type ControlChannel } from './control-channel.js';
import { outranks } from './election.js';
import { encodeEnvelope } from './envelope.js';
import { MIN_INTERVALS } from './keepalive-loss.js';
import { MasterRole, type ClusterLog, type JoinVeto, type PeerAddress } from './master-role.js';
import { MessageGuard, type ReceivedMessage } from './message-guard.js';
import { AUTHENTICATED, encodeBody, MESSAGE_TYPES, type ClusterMessage, type Lease, type MessageBody } from './messages.js';
import type { NumberSpace } from './numbering.js';
import { OwnershipView } from './ownership-view.js';
import { parseParams, parseResult } from './rpc-methods.js';
import { clusterTiming, type ClusterTiming } from './timing.js';
import { connectControl, startControlServer } from './tls-endpoints.js';
import { MulticastTransport } from './transport.js';
import { decodeTable, WORK_UNITS, type OwnershipChange, type UnitLoad } from './work-units.js';

export type Role = 'discovering' | 'offering' | 'joining' | 'member' | 'master' | 'refused' | 'stopped';

export interface MemberOptions {
  config: VerifiedFlashConfig;
  /** This unit's address on the cluster network; must be one of its certificate's IP SANs. */
  address: string;
  multicast: { group: string; port: number };
  /** TLS port for joins, unit moves and leases. */
  joinPort: number;
  timing?: Partial<ClusterTiming>;
  numberSpaces?: NumberSpace[];
  /** Per-unit load measured by the data plane since the last call (rebalancing input). */
  loadSource?: () => UnitLoad[];
  /** This unit's data-port MACs by port id, told the master on joining (forwarding delivery). */
  dataMacs?: string[];
  log?: ClusterLog;
}

const TICK_MS = 10;
/** A tick this much later than due means the event loop stalled (a starved host, a long GC): the
 * datagrams and records that arrived meanwhile are still unread, because Node runs timers before
 * I/O. Such a tick judges nobody silent and sends nothing; the next one, after the reads, does. */
const STALLED_TICK_MS = 250;
/** Stalls from this long on are logged: they explain members lost on an overloaded host. */
const LOGGED_STALL_MS = 1000;

function defaultLog(): ClusterLog {
  const logger = pino({ name: 'cluster' });
  return (level, event, fields) => logger[level]({ ...fields }, event);
}

export class Member {
  readonly guard = new MessageGuard();
  readonly timing: ClusterTiming;
  private readonly view = new OwnershipView();
  private readonly log: ClusterLog;
  private readonly vetoes: JoinVeto[] = [];
  private readonly roleListeners: ((role: Role) => void)[] = [];
  private readonly announceListeners: (() => void)[] = [];
  private readonly numberSpaces: Map<string, NumberSpace>;
  private transport: MulticastTransport | undefined;
  private server: Server | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private sequence = BigInt(Date.now()) * 1000n;
  private clusterKey: Buffer | undefined;
  private currentRole: Role = 'stopped';
  private roleSince = 0;
  private lastSent = 0;
  private lastTick = 0;
  private lastOfferSeen = 0;
  /** Member role: the master, its channel and what its keepalives replicate. */
  private master: { id: string; channel: ControlChannel; lastHeard: number; intervals: number } | undefined;
  private replicated: { members: string[]; owners: (string | null)[]; leases: Lease[] } = { members: [], owners: Array(WORK_UNITS).fill(null), leases: [] };
  private myLeases: Lease[] = [];
  /** Member role: every member's address, from the last master keepalive. */
  private memberAddresses = new Map<string, string>();
  private masterRole: MasterRole | undefined;
  private lastLoadReport = 0;
  /** Units the master told us to hold for a move to us, until when (keepalives leave them alone). */
  private readonly incoming = new Map<number, number>();
  /** Releases whose barrier is still running, per unit: a repeated release (the master got no
   * answer in time) is answered only when the first one's flow state is delivered. */
  private readonly releasing = new Map<number, Promise<boolean>>();
  /** The signed policy the cluster runs (our flash config's until a higher valid one arrives). */
  private readonly clusterPolicy: ClusterPolicy;
  /** A policy pull from the master in flight (a keepalive announced a higher version). */
  private pullingPolicy = false;
  private releaseBarrier: (units: readonly number[], next?: PeerAddress) => Promise<boolean> = () => Promise.resolve(true);
  /** Why the last join was refused, as the master (and we) said it. */
  lastRefusal: string | undefined;

  constructor(private readonly options: MemberOptions) {
    this.timing = clusterTiming(options.config.policy, options.timing);
    this.clusterPolicy = new ClusterPolicy(options.config);
    this.log = options.log ?? defaultLog();
    this.numberSpaces = new Map((options.numberSpaces ?? []).map((space) => [space.name, space]));
  }

  get id(): string {
    return this.options.config.identity.unit.id;
  }

  /** The policy this unit runs: its flash config's, or a higher signed version adopted from the cluster. */
  get policy(): Policy {
    return this.clusterPolicy.policy;
  }

  /** A higher signed policy was adopted (from a joiner, the master, or a join answer): the
   * application applies its services. */
  onPolicyChange(listener: PolicyListener): void {
    this.clusterPolicy.onChange(listener);
  }

  get role(): Role {
    return this.currentRole;
  }

  get masterId(): string | undefined {
    return this.currentRole === 'master' ? this.id : this.currentRole === 'member' ? this.master?.id : undefined;
  }

  /** Members as this unit knows them (the master's list, or its own when master). */
  get memberIds(): string[] {
    if (this.masterRole) return [this.id, ...this.masterRole.members.keys()];
    return this.currentRole === 'member' ? [...this.replicated.members] : [];
  }

  /** The other members and their cluster addresses (flow-state replication peers). */
  peers(): { id: string; address: string }[] {
    if (this.masterRole) return [...this.masterRole.members].map(([id, record]) => ({ id, address: record.address }));
    if (this.currentRole !== 'member') return [];
    return [...this.memberAddresses].filter(([id]) => id !== this.id).map(([id, address]) => ({ id, address }));
  }

  /** Master: every other member's data-port MACs by port id, as it joined with them (forwarding
   * delivery passes the frames of a member's work units on to them). Empty otherwise. */
  memberDataMacs(): Map<string, string[]> {
    return new Map([...(this.masterRole?.members ?? [])].map(([id, record]) => [id, record.dataMacs]));
  }

  /** When this unit last heard each member it watches (ms since the epoch): the master watches
   * every member's keepalives, a member only the master's (management API health). */
  lastHeard(): Map<string, number> {
    if (this.masterRole) return new Map([...this.masterRole.members].map(([id, record]) => [id, record.lastHeard]));
    return this.master ? new Map([[this.master.id, this.master.lastHeard]]) : new Map();
  }

  get leases(): Lease[] {
    return this.masterRole ? this.masterRole.leases.all() : [...this.replicated.leases];
  }

  ownership(): OwnershipChange[] {
    return this.view.all();
  }

  /** The data plane binding subscribes here: every change of owner or state of a unit. */
  onOwnershipChange(listener: (units: OwnershipChange[]) => void): void {
    this.view.onChange(listener);
  }

  /** Role changes; on 'master' the data plane sends gratuitous ARP for the cluster addresses. */
  onRoleChange(listener: (role: Role) => void): void {
    this.roleListeners.push(listener);
  }

  /** Mastership taken, or kept by winning a split-brain tie-break: the data plane binding sends
   * gratuitous ARP for the cluster addresses (CL-R2). */
  onAnnounce(listener: () => void): void {
    this.announceListeners.push(listener);
  }

  /** The data plane binding: a release is acknowledged only after this resolves (the units' flow
   * state has reached the other members, and all of it the next owner when the master names it),
   * so the next owner continues their connections. */
  setReleaseBarrier(barrier: (units: readonly number[], next?: PeerAddress) => Promise<boolean>): void {
    this.releaseBarrier = barrier;
  }

  /** An application may refuse joiners (CL-R5); its reason goes to the log and to the joiner. */
  addJoinVeto(veto: JoinVeto): void {
    this.vetoes.push(veto);
  }

  async start(): Promise<void> {
    this.server = await startControlServer({
      config: this.options.config,
      host: this.options.address,
      port: this.options.joinPort,
      accept: (peer, channel) => (method, params) => this.handleFromPeer(peer, channel(), method, params),
      refused: (reason, remoteAddress) => this.log('warn', 'join refused', { address: remoteAddress, reason }),
    });
    this.transport = await MulticastTransport.open({ ...this.options.multicast, interfaceAddress: this.options.address }, (datagram, source) =>
      this.receive(datagram, source),
    );
    this.enter('discovering');
    this.ticker = setInterval(() => this.tick(Date.now()), TICK_MS);
  }

  async stop(): Promise<void> {
    clearInterval(this.ticker);
    this.masterRole?.stop('unit stopping');
    this.master?.channel.close('unit stopping');
    this.enter('stopped');
    await this.transport?.close();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Data plane event: packets arrived for units nobody owns (first use). */
  reportUnassigned(units: readonly number[]): Promise<void> {
    if (this.masterRole) return this.masterRole.needUnits(units);
    if (this.currentRole !== 'member' || !this.master) return Promise.resolve();
    return this.master.channel.request('need-units', { units: [...units] }, this.timing.requestTimeoutMs).then(() => undefined);
  }

  /** Leases a block of a named number space from the cluster's numbering authority (SR-R6). */
  async requestLease(space: string): Promise<Lease> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        const lease = this.masterRole
          ? this.masterRole.grant(space, this.id)
          : parseResult('lease', await this.masterChannel().request('lease', { space }, this.timing.requestTimeoutMs));
        this.myLeases.push(lease);
        return lease;
      } catch (error) {
        const retry = (error instanceof RequestRefused ? error.reason : (error as Error).message).startsWith('busy:');
        if (!retry || attempt >= 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, this.timing.detectionMs));
      }
    }
  }

  private masterChannel(): ControlChannel {
    if (this.currentRole !== 'member' || !this.master) throw new Error(`not a cluster member (role ${this.currentRole})`);
    return this.master.channel;
  }

  private enter(role: Role): void {
    if (role !== this.currentRole) this.log('info', 'role', { from: this.currentRole, to: role });
    this.currentRole = role;
    this.roleSince = Date.now();
    this.lastSent = 0;
    for (const listener of this.roleListeners) listener(role);
  }

  private send(message: ClusterMessage): void {
    const authenticated = AUTHENTICATED.has(message.name);
    if (authenticated && !this.clusterKey) return;
    this.sequence += 1n;
    const datagram = encodeEnvelope(
      { type: MESSAGE_TYPES[message.name], authenticated, sequence: this.sequence, senderId: this.id, senderAddress: this.options.address, body: encodeBody(message) },
      authenticated ? this.clusterKey : undefined,
    );
    this.transport?.send(datagram);
  }

  private receive(datagram: Buffer, source: string): void {
    const verdict = this.guard.check(datagram, source);
    if (!verdict.ok || verdict.received.senderId === this.id) return;
    const now = Date.now();
    const { message } = verdict.received;
    switch (this.currentRole) {
      case 'discovering':
      case 'offering':
        if (message.name === 'master-announce' || message.name === 'other-master-exists') void this.join(verdict.received, message.body);
        else if (message.name === 'offer' && outranks({ memberCount: message.body.memberCount, address: verdict.received.senderAddress }, { memberCount: 1, address: this.options.address })) {
          this.lastOfferSeen = now;
          if (this.currentRole === 'offering') this.enter('discovering');
        }
        return;
      case 'member':
        this.onMemberMessage(verdict.received, now);
        return;
      case 'master':
        this.masterRole?.onMessage(verdict.received, now);
        return;
      default:
        return;
    }
  }

  private onMemberMessage(received: ReceivedMessage, now: number): void {
    const master = this.master;
    if (!master || received.senderId !== master.id) return;
    const { message } = received;
    if (message.name === 'exit-cluster' && message.body.target === this.id) {
      this.removedByMaster(message.body.reason);
    } else if (message.name === 'master-keepalive') {
      master.lastHeard = now;
      const members = message.body.members.map((member) => member.id);
      this.memberAddresses = new Map(message.body.members.map((member) => [member.id, member.address]));
      if (message.body.configVersion > this.clusterPolicy.version) this.pullPolicy(master.id, master.channel);
      master.intervals = message.body.members.find((member) => member.id === this.id)?.intervals ?? MIN_INTERVALS;
      try {
        this.replicated = { members, owners: decodeTable(message.body.table, members), leases: message.body.leases };
      } catch (error) {
        this.log('warn', 'bad keepalive table', { error: (error as Error).message });
        return;
      }
      const owned = new Set(this.view.owned());
      for (const [unit, until] of this.incoming) if (until <= now) this.incoming.delete(unit);
      this.view.update(
        this.replicated.owners.flatMap((owner, unit) => (owned.has(unit) || owner === this.id || this.incoming.has(unit) ? [] : [{ unit, owner, state: 'foreign' as const }])),
      );
    }
  }

  /** The master runs a higher configuration version: fetch its signed policy, verify it ourselves, adopt it. */
  private pullPolicy(masterId: string, channel: ControlChannel): void {
    if (this.pullingPolicy) return;
    this.pullingPolicy = true;
    channel
      .request('policy', {}, this.timing.requestTimeoutMs)
      .then((answer) => this.adoptFrom(masterId, verifyWirePolicy(this.options.config, parseResult('policy', answer))))
      .catch((error: unknown) => this.log('warn', 'policy refused', { from: masterId, reason: (error as Error).message }))
      .finally(() => {
        this.pullingPolicy = false;
      });
  }

  private adoptFrom(from: string, candidate: VerifiedPolicy): void {
    const previous = this.clusterPolicy.version;
    if (this.clusterPolicy.adopt(candidate, from)) this.log('info', 'policy adopted', { configVersion: candidate.policy.configVersion, previous, from });
  }

  private tick(now: number): void {
    const late = this.lastTick === 0 ? 0 : now - this.lastTick - TICK_MS;
    this.lastTick = now;
    if (late > STALLED_TICK_MS) {
      if (late >= LOGGED_STALL_MS) this.log('warn', 'event loop stalled', { ms: late, role: this.currentRole });
      return;
    }
    const since = now - this.roleSince;
    switch (this.currentRole) {
      case 'discovering':
        if (now - this.lastSent >= this.timing.silenceMs / 2) {
          this.lastSent = now;
          this.send({ name: 'discover', body: { configVersion: this.clusterPolicy.version } });
        }
        if (since >= this.timing.silenceMs && now - this.lastOfferSeen >= this.timing.silenceMs) this.enter('offering');
        return;
      case 'offering':
        if (now - this.lastSent >= this.timing.silenceMs / 3) {
          this.lastSent = now;
          this.send({ name: 'offer', body: { memberCount: 1, configVersion: this.clusterPolicy.version } });
        }
        if (since >= this.timing.silenceMs) this.becomeMaster(now);
        return;
      case 'member':
        this.memberTick(now);
        return;
      case 'master':
        this.masterRole?.tick(now);
        return;
      case 'refused':
        if (since >= this.timing.refusedRetryMs) this.enter('discovering');
        return;
      default:
        return;
    }
  }

  private memberTick(now: number): void {
    const master = this.master;
    if (!master) return;
    if (now - master.lastHeard > this.timing.detectionMs) return this.loseMaster(`no master keepalive for ${now - master.lastHeard} ms`);
    if (now - this.lastSent >= Math.min(this.timing.keepaliveMs, this.timing.detectionMs / master.intervals)) {
      this.lastSent = now;
      this.send({ name: 'client-keepalive', body: {} });
    }
    if (this.options.loadSource && now - this.lastLoadReport >= this.timing.rebalanceMs / 2) {
      this.lastLoadReport = now;
      const owned = new Set(this.view.owned());
      const units = this.options.loadSource().filter((load) => owned.has(load.unit));
      master.channel.request('load', { units }, this.timing.requestTimeoutMs).catch(() => undefined);
    }
  }

  /** The master no longer counts us as a member and frees our units: give them up, then rejoin. */
  private removedByMaster(reason: string): void {
    const dropped = this.view.owned();
    this.view.update(dropped.map((unit) => ({ unit, owner: null, state: 'foreign' as const })));
    this.log('warn', 'removed by the master', { reason, droppedUnits: dropped.length });
    this.loseMaster(`master says exit cluster: ${reason}`);
  }

  private loseMaster(reason: string): void {
    if (this.currentRole !== 'member') return;
    this.log('warn', 'master lost', { master: this.master?.id, reason, keptUnits: this.view.owned().length });
    const channel = this.master?.channel;
    this.master = undefined;
    this.enter('discovering');
    channel?.close(reason);
  }

  private becomeMaster(now: number): void {
    this.clusterKey ??= randomBytes(32);
    this.guard.setKey(this.clusterKey);
    this.masterRole = new MasterRole(
      {
        config: this.options.config,
        selfId: this.id,
        selfAddress: this.options.address,
        joinPort: this.options.joinPort,
        policy: this.clusterPolicy,
        timing: this.timing,
        clusterKey: this.clusterKey,
        view: this.view,
        vetoes: this.vetoes,
        numberSpaces: this.numberSpaces,
        send: (message) => this.send(message),
        log: this.log,
        loadSource: () => this.options.loadSource?.() ?? [],
        stepDown: (reason) => this.stepDown(reason),
        releaseBarrier: (units, next) => this.releaseBarrier(units, next),
        announce: (reason) => this.announce(reason),
      },
      { owners: this.replicated.owners, leases: [...this.replicated.leases, ...this.myLeases], ownedUnits: this.view.owned() },
      now,
    );
    this.log('info', 'became master', { offeredForMs: now - this.roleSince });
    this.enter('master');
    this.announce('became master');
  }

  private announce(reason: string): void {
    this.log('info', 'announcing the cluster addresses', { reason });
    for (const listener of this.announceListeners) listener();
  }

  private stepDown(reason: string): void {
    const role = this.masterRole;
    if (!role || this.currentRole !== 'master') return;
    this.log('warn', 'stepping down', { reason, keptUnits: this.view.owned().length });
    this.replicated = { members: [], owners: [...role.authority.owners], leases: role.leases.all() };
    this.masterRole = undefined;
    role.stop(`master stepping down: ${reason}`);
    this.enter('discovering');
  }

  private async join(announcer: ReceivedMessage, claim: MessageBody<'master-announce'>): Promise<void> {
    this.enter('joining');
    const target = { host: announcer.senderAddress, port: claim.joinPort, localAddress: this.options.address };
    let connected;
    try {
      connected = await connectControl(this.options.config, target, (method, params) => this.handleFromMaster(method, params), this.timing.requestTimeoutMs);
    } catch (error) {
      this.log('warn', 'join connection failed', { master: announcer.senderId, error: (error as Error).message });
      if (this.currentRole === 'joining') this.enter('discovering');
      return;
    }
    const { channel, server } = connected;
    const request = { unitId: this.id, address: this.options.address, configVersion: this.clusterPolicy.version, policy: policyToWire(this.clusterPolicy.signed), ownedUnits: this.view.owned(), leases: this.myLeases, dataMacs: this.options.dataMacs ?? [] };
    let answer: unknown;
    let masterSays: string | undefined;
    try {
      answer = await channel.request('join', request, this.timing.requestTimeoutMs);
    } catch (error) {
      if (!(error instanceof RequestRefused)) {
        channel.close('join failed');
        this.log('warn', 'join failed', { master: announcer.senderId, error: (error as Error).message });
        this.enter('discovering');
        return;
      }
      masterSays = error.reason;
    }
    const ourReason = !server.ok ? `master ${announcer.senderAddress}: ${server.reason}` : server.peer.unitId !== announcer.senderId ? `announce from '${announcer.senderId}' but the TLS certificate is '${server.peer.unitId}'` : undefined;
    if (ourReason === undefined && masterSays?.startsWith('busy:')) {
      channel.close('master busy');
      this.log('info', 'join deferred', { master: announcer.senderId, reason: masterSays });
      this.enter('discovering');
      return;
    }
    if (ourReason !== undefined || masterSays !== undefined) {
      channel.close('join refused');
      this.lastRefusal = [masterSays && `master: ${masterSays}`, ourReason && `us: ${ourReason}`].filter(Boolean).join('; ');
      this.log('warn', 'join refused', { master: announcer.senderId, reason: this.lastRefusal });
      this.enter('refused');
      return;
    }
    const accepted = parseResult('join', answer);
    let clusterPolicy: VerifiedPolicy;
    try {
      clusterPolicy = verifyWirePolicy(this.options.config, accepted.policy);
    } catch (error) {
      channel.close('invalid cluster policy');
      this.lastRefusal = `us: the master's signed policy is invalid: ${(error as Error).message}`;
      this.log('warn', 'join refused', { master: announcer.senderId, reason: this.lastRefusal });
      this.enter('refused');
      return;
    }
    this.clusterKey = Buffer.from(accepted.clusterKey, 'base64');
    this.guard.setKey(this.clusterKey);
    this.myLeases = this.myLeases.filter((lease) => !accepted.refusedLeases.some((refused) => refused.space === lease.space && refused.start === lease.start));
    this.view.update(accepted.release.map((unit) => ({ unit, owner: null, state: 'foreign' as const })));
    this.master = { id: accepted.masterId, channel, lastHeard: Date.now(), intervals: MIN_INTERVALS };
    channel.onClose((reason) => {
      if (this.master?.channel === channel) this.loseMaster(`control channel closed: ${reason}`);
    });
    this.lastRefusal = undefined;
    this.adoptFrom(accepted.masterId, clusterPolicy);
    this.log('info', 'joined', { master: accepted.masterId, joinedInMs: Date.now() - this.roleSince });
    this.enter('member');
  }

  /** Requests from the master to this member: acknowledged unit moves. */
  private async handleFromMaster(method: string, params: unknown): Promise<unknown> {
    if (method === 'hold-units') {
      const { units } = parseParams('hold-units', params);
      // Held until assigned, or given up by a release; the deadline covers a master that died mid-move.
      const until = Date.now() + 3 * this.timing.requestTimeoutMs;
      for (const unit of units) this.incoming.set(unit, until);
      this.view.update(units.filter((unit) => this.view.get(unit).state !== 'owned').map((unit) => ({ unit, owner: this.view.get(unit).owner, state: 'holding' as const })));
      return { units };
    }
    if (method === 'release-units') {
      const { units, next } = parseParams('release-units', params);
      const wasOwned = units.filter((unit) => this.view.get(unit).state === 'owned');
      for (const unit of units) this.incoming.delete(unit);
      this.view.update(units.map((unit) => ({ unit, owner: null, state: 'foreign' as const })));
      const barrier = this.releaseBarrier(wasOwned, next);
      for (const unit of wasOwned) this.releasing.set(unit, barrier);
      let delivered: boolean[];
      try {
        delivered = await Promise.all(units.map((unit) => this.releasing.get(unit) ?? barrier));
      } finally {
        for (const unit of wasOwned) if (this.releasing.get(unit) === barrier) this.releasing.delete(unit);
      }
      // A unit whose flow state did not reach the next owner in time stays here (taken back, its held
      // packets forwarded in order): handing it over would reset its connections.
      const kept = units.filter((unit, i) => !delivered[i] && this.view.get(unit).owner === null);
      this.view.update(kept.map((unit) => ({ unit, owner: this.id, state: 'owned' as const })));
      return { units: units.filter((unit) => this.view.get(unit).state !== 'owned') };
    }
    if (method === 'assign-units') {
      const { units } = parseParams('assign-units', params);
      for (const unit of units) this.incoming.delete(unit);
      this.view.update(units.map((unit) => ({ unit, owner: this.id, state: 'owned' as const })));
      return { units };
    }
    if (method === 'exit-cluster') {
      this.removedByMaster(parseParams('exit-cluster', params).reason);
      return null;
    }
    throw new Error(`unknown request '${method}' from the master`);
  }

  /** Requests from a unit that connected to us: only a master answers them. */
  private handleFromPeer(peer: CertifiedUnit, channel: ControlChannel, method: string, params: unknown): Promise<unknown> {
    if (!this.masterRole) return Promise.reject(new FinalRefusal(`busy: ${this.id} is not the master (role ${this.currentRole})`));
    return this.masterRole.handle(peer, channel, method, params);
  }
}
