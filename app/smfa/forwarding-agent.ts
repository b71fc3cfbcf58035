/* The forwarding agent shim (SMFA-R1..R19 as far as the data plane allows): manager messages in
 * over UDP, wildcard and fixed affinities (with their interest criteria) out to the data plane,
 * which evaluates the criteria and holds packets itself; what it sends up goes to the manager as
 * interest matches, the manager's returned packet is processed with the new affinity. */
import type { RemoteInfo } from 'node:dgram';
import type { Dataplane, PuntedPacket } from '../../firmware/dataplane.js';
import { parseMac } from '../../firmware/addressing.js';
import { dataplaneFixed, dataplaneWildcard, unsupportedActions, unsupportedFixed } from './dataplane-actions.js';
import { FixedOwners, type FixedNotice } from './fixed-owners.js';
import { wildcardMatches } from './address-match.js';
import { frameOfIpPacket, ipPacketOfFrame, keyText, parseIpPacket } from './ip-packet.js';
import { precedenceOf } from './precedence.js';
import type { ActionListEntry, AffinityKey, AffinityUpdateFixed, AffinityUpdateWildcard, Identity, InterestCriteria, Message, OriginalAffinity } from './types.js';
import { SmfaTransport, type TransportOptions } from './udp-transport.js';
import { WildcardTable, type StoredWildcard } from './wildcard-table.js';
import { DEFAULT_PORT } from './wire-constants.js';

/** Announces addresses into routing while a wildcard with an advertise action lives (SMFA-R14). */
export interface Advertiser {
  /** The complete set of prefixes ("a.b.c.d/len") to announce now. */
  update(prefixes: string[]): Promise<void>;
}

export interface ForwardingAgentOptions {
  dataplane: Dataplane;
  /** `groupPort` is where managers announce wildcards; `port` (default ephemeral) is this agent's
   * unicast socket, where its interest matches come from and fixed affinities arrive. Two sockets,
   * so several agents on one host can share the group port and still get their own answers. */
  transport: Omit<TransportOptions, 'onMessage'>;
  identity?: Identity;
  advertiser?: Advertiser;
  /** Expiry sweep period; expired affinities go within it (SMFA-R17 allows 2 s). */
  sweepMs?: number;
}

export interface AgentCounters {
  wildcardsAdded: number;
  wildcardsRefreshed: number;
  wildcardsDeleted: number;
  wildcardsExpired: number;
  fixedInstalled: number;
  fixedDeleted: number;
  fixedShadowed: number;
  deniesSent: number;
  deniedNoWildcard: number;
  /** Fixed updates whose actions the data plane can do, but not for that flow (IPv6 dispatch or information flag). */
  deniedFlow: number;
  /** Fixed affinities (TTL > 0) from the manager of a cascading service: they would take the flow from the services below it. */
  deniedCascading: number;
  deniesReceived: number;
  /** Packets the data plane sent up (interest matches of wildcards and fixed affinities). */
  punted: number;
  /** Sent up but neither IPv4 nor IPv6. */
  notIp: number;
  /** Sent up by a wildcard the agent no longer has (replaced or expired meanwhile). */
  withoutWildcard: number;
  /** Sent up by a fixed affinity whose criteria the agent no longer knows. */
  withoutFixed: number;
  interestMatchesSent: number;
  fixedMatchesSent: number;
  /** Interest matches for packets the data plane holds until the fixed affinity comes. */
  held: number;
  packetsReturned: number;
  /** Returned packets that went on after their cascading service's wildcard (SMFA-R18). */
  cascadeResumed: number;
  ipPacketOnly: number;
  unexpected: number;
  /** Data plane calls that failed (e.g. a full affinity table): the message is dropped. */
  dataplaneErrors: number;
}

const FA_DATA_BYTES = 2;
const ROUND_TRIP_SAMPLES = 100_000;
const PENDING_LIMIT_MS = 10_000;

export class ForwardingAgent {
  readonly counters: AgentCounters = {
    wildcardsAdded: 0, wildcardsRefreshed: 0, wildcardsDeleted: 0, wildcardsExpired: 0,
    fixedInstalled: 0, fixedDeleted: 0, fixedShadowed: 0, deniesSent: 0, deniedNoWildcard: 0, deniedFlow: 0, deniedCascading: 0, deniesReceived: 0,
    punted: 0, notIp: 0, withoutWildcard: 0, withoutFixed: 0, interestMatchesSent: 0, fixedMatchesSent: 0, held: 0,
    packetsReturned: 0, cascadeResumed: 0, ipPacketOnly: 0, unexpected: 0, dataplaneErrors: 0,
  };
  /** Microseconds from sending a packet up to getting it back with its affinity (SYN round trip). */
  readonly roundTripsMicros: number[] = [];
  readonly #wildcards = new WildcardTable();
  readonly #owners = new FixedOwners();
  readonly #pendingSince = new Map<string, bigint>();
  readonly #portMacs: Buffer[];
  #installed = '';
  /** The cascading wildcards in the data plane, best first (usually none). */
  #cascading: StoredWildcard[] = [];
  #advertised = '';
  #advertising: Promise<void> = Promise.resolve();
  #transport!: SmfaTransport;
  #listener!: SmfaTransport;
  #sweep: NodeJS.Timeout | undefined;

  private constructor(private readonly options: ForwardingAgentOptions) {
    this.#portMacs = options.dataplane.ports().map((p) => parseMac(p.mac));
  }

  static async start(options: ForwardingAgentOptions): Promise<ForwardingAgent> {
    const agent = new ForwardingAgent(options);
    const onMessage: TransportOptions['onMessage'] = (m, from) => agent.#receive(m, from);
    agent.#listener = await SmfaTransport.open({ ...options.transport, port: options.transport.groupPort ?? DEFAULT_PORT, onMessage });
    agent.#transport = await SmfaTransport.open({ ...options.transport, port: options.transport.port ?? 0, onMessage });
    options.dataplane.onPunt((pkt) => agent.#punted(pkt));
    agent.#sweep = setInterval(() => agent.#expire(), options.sweepMs ?? 250);
    return agent;
  }

  /** The unicast socket (fixed affinities, interest matches, denies) and the group listener. */
  get transports(): { unicast: SmfaTransport; group: SmfaTransport } {
    return { unicast: this.#transport, group: this.#listener };
  }

  /** Wildcards stored (active and backup). */
  get wildcardCount(): number {
    return this.#wildcards.size;
  }

  async stop(): Promise<void> {
    clearInterval(this.#sweep);
    await this.#transport.close();
    await this.#listener.close();
    await this.#advertising;
  }

  #receive(message: Message, from: RemoteInfo): void {
    try {
      this.#handle(message, from);
    } catch {
      this.counters.dataplaneErrors++;
    }
  }

  #handle(message: Message, from: RemoteInfo): void {
    const manager = `${from.address}:${from.port}`;
    switch (message.type) {
      case 'affinity-update-wildcard':
        return this.#wildcardUpdate(message, manager, from);
      case 'affinity-update-fixed':
        return this.#fixedUpdate(message, manager, from);
      case 'ip-packet-only':
        // Already been to the manager: processed here, never sent up to it again (SMFA-R9).
        this.counters.ipPacketOnly++;
        return this.#process(message.ipPacket, 0, manager);
      case 'affinity-update-deny':
        this.counters.deniesReceived++;
        return;
      default:
        this.counters.unexpected++;
    }
  }

  #wildcardUpdate(update: AffinityUpdateWildcard, manager: string, from: RemoteInfo): void {
    const unsupported = unsupportedActions(update, { advertise: this.options.advertiser !== undefined });
    if (unsupported.length > 0) {
      return this.#deny(unsupported, { kind: 'wildcard', affinity: update.wildcard }, update.smInterestData, from);
    }
    const reply = replyTarget(update.actions.interestCriteria, from);
    const outcome = this.#wildcards.apply({ manager, reply, update, precedence: precedenceOf(update.servicePrecedence, update.backupPrecedence) }, Date.now());
    if (outcome === 'added') this.counters.wildcardsAdded++;
    if (outcome === 'refreshed') this.counters.wildcardsRefreshed++;
    if (outcome === 'deleted') this.counters.wildcardsDeleted++;
    this.#publish();
  }

  #fixedUpdate(update: AffinityUpdateFixed, manager: string, from: RemoteInfo): void {
    const unsupported = unsupportedActions(update, { advertise: false });
    const original: OriginalAffinity = { kind: 'fixed', affinity: update.fixed };
    if (unsupported.length > 0) return this.#deny(unsupported, original, update.smInterestData, from);
    if (unsupportedFixed(update)) {
      this.counters.deniedFlow++;
      return this.#deny([], original, update.smInterestData, from);
    }
    const key = update.fixed.key;
    if (!this.#wildcards.coveredBy(manager, key)) {
      this.counters.deniedNoWildcard++;
      return this.#deny([], original, update.smInterestData, from);
    }
    const port = update.faInterestData?.length === FA_DATA_BYTES ? update.faInterestData.readUInt16BE(0) : 0;
    if (this.#cascadingWildcard(manager, key)) {
      // A cascading service answers with TTL 0 (do not cache) and the packet, which goes on after it:
      // one flow has one fixed affinity here, which would take the flow from the services below.
      if (update.fixed.ttlSeconds > 0) {
        this.counters.deniedCascading++;
        this.#deny([], original, update.smInterestData, from);
      }
      this.#noteRoundTrip(keyText(key));
      if (update.ipPacket) {
        this.counters.packetsReturned++;
        this.#process(update.ipPacket, port, manager);
      }
      return;
    }
    const precedence = precedenceOf(update.servicePrecedence, update.backupPrecedence);
    const criteria = update.actions.interestCriteria;
    const notice: FixedNotice | undefined = criteria && criteria.mask !== 0
      ? {
          reply: replyTarget(criteria, from),
          dispatch: update.fixed.dispatch,
          information: update.fixed.information,
          ...(update.smInterestData ? { smInterestData: update.smInterestData } : {}),
        }
      : undefined;
    const verdict = this.#owners.decide(manager, key, update.fixed.ttlSeconds, precedence, Date.now(), notice);
    if (verdict === 'install') {
      this.options.dataplane.addAffinity(dataplaneFixed(update));
      this.counters.fixedInstalled++;
    } else if (verdict === 'delete') {
      this.options.dataplane.removeAffinity(key);
      this.counters.fixedDeleted++;
    } else if (verdict === 'shadowed') {
      this.counters.fixedShadowed++;
    }
    const flow = keyText(key);
    this.#noteRoundTrip(flow);
    if (update.ipPacket) {
      this.counters.packetsReturned++;
      this.#process(update.ipPacket, port, manager);
    }
    // Packets the data plane holds for this flow go through the new affinity there, in order.
  }

  /** The manager's best cascading wildcard in force that covers the key. */
  #cascadingWildcard(manager: string, key: AffinityKey): StoredWildcard | undefined {
    return this.#cascading.find((entry) => entry.manager === manager && wildcardMatches(entry.update.wildcard, key));
  }

  /** The data plane runs a packet the manager returned through its pipeline. From a cascading
   * service it goes on after that service's wildcard (SMFA-R18); otherwise a punt verdict drops it
   * (it has been up: no loop). */
  #process(packet: Buffer, port: number, manager: string): void {
    const mac = this.#portMacs[port] ?? this.#portMacs[0]!;
    const key = parseIpPacket(packet)?.key;
    const cascading = key && this.#cascadingWildcard(manager, key);
    if (cascading) this.counters.cascadeResumed++;
    this.options.dataplane.injectForProcessing(this.#portMacs[port] ? port : 0, frameOfIpPacket(packet, mac), cascading ? cascading.id : undefined);
  }

  #deny(actionList: ActionListEntry[], originalAffinity: OriginalAffinity, smInterestData: Buffer | undefined, to: RemoteInfo): void {
    this.counters.deniesSent++;
    const deny: Message = { type: 'affinity-update-deny', actionList, originalAffinity };
    if (this.options.identity) deny.identity = this.options.identity;
    if (smInterestData) deny.smInterestData = smInterestData;
    this.#send(deny, to.address, to.port);
  }

  #punted(pkt: PuntedPacket): void {
    this.counters.punted++;
    const { interest } = pkt;
    if (pkt.reason !== 'interest' || !interest) {
      this.counters.unexpected++;
      return;
    }
    const packet = ipPacketOfFrame(pkt.frame);
    const parsed = packet && parseIpPacket(packet);
    if (!packet || !parsed) {
      this.counters.notIp++;
      return;
    }
    if (interest.held) this.counters.held++;
    // Without the data flag only the headers came up: they name the flow, the packet stays out.
    const ipPacket = interest.packet ? packet : undefined;
    if (interest.fixed) return this.#sendFixedInterest(parsed.key, interest.reasons, ipPacket);
    const wildcard = this.#wildcards.byId(pkt.wildcardId);
    if (!wildcard) {
      this.counters.withoutWildcard++;
      return;
    }
    this.#sendInterest(wildcard, parsed.key, interest.reasons, pkt.port, ipPacket);
    if (!interest.copy) this.#pendingSince.set(keyText(parsed.key), process.hrtime.bigint());
  }

  #sendInterest(wildcard: StoredWildcard, key: AffinityKey, reasons: number, port: number, packet: Buffer | undefined): void {
    const faInterestData = Buffer.alloc(FA_DATA_BYTES);
    faInterestData.writeUInt16BE(port, 0);
    const match: Message = {
      type: 'interest-match-wildcard',
      affinity: { key, dispatch: wildcard.update.wildcard.dispatch, information: wildcard.update.wildcard.information, interestReasons: reasons },
      faInterestData,
    };
    if (this.options.identity) match.identity = this.options.identity;
    if (wildcard.update.smInterestData) match.smInterestData = wildcard.update.smInterestData;
    if (packet) match.ipPacket = packet;
    this.counters.interestMatchesSent++;
    this.#send(match, wildcard.reply.address, wildcard.reply.port);
  }

  /** A fixed affinity's criteria matched, e.g. a FIN: the manager learns the connection is ending (SMFA-R25). */
  #sendFixedInterest(key: AffinityKey, reasons: number, packet: Buffer | undefined): void {
    const notice = this.#owners.notice(key, Date.now());
    if (!notice) {
      this.counters.withoutFixed++;
      return;
    }
    const match: Message = {
      type: 'interest-match-fixed',
      affinity: { key, dispatch: notice.dispatch, information: notice.information, interestReasons: reasons },
    };
    if (this.options.identity) match.identity = this.options.identity;
    if (notice.smInterestData) match.smInterestData = notice.smInterestData;
    if (packet) match.ipPacket = packet;
    this.counters.fixedMatchesSent++;
    this.#send(match, notice.reply.address, notice.reply.port);
  }

  #send(message: Message, address: string, port: number): void {
    this.#transport.send(message, address, port).catch(() => {
      // A lost datagram: the manager's refresh or the packet's retransmission covers it.
    });
  }

  #noteRoundTrip(flow: string): void {
    const since = this.#pendingSince.get(flow);
    if (since === undefined) return;
    this.#pendingSince.delete(flow);
    if (this.roundTripsMicros.length < ROUND_TRIP_SAMPLES) this.roundTripsMicros.push(Number(process.hrtime.bigint() - since) / 1000);
  }

  #expire(): void {
    const now = Date.now();
    const expired = this.#wildcards.expire(now);
    this.counters.wildcardsExpired += expired.length;
    this.#owners.expire(now);
    const oldest = process.hrtime.bigint() - BigInt(PENDING_LIMIT_MS) * 1_000_000n;
    for (const [flow, since] of this.#pendingSince) if (since < oldest) this.#pendingSince.delete(flow);
    if (expired.length > 0) this.#publish();
  }

  /** Pushes the merged active set, best first, to the data plane, and the advertised prefixes to routing. */
  #publish(): void {
    const ordered = this.#wildcards.active();
    const rules = ordered.map((entry, i) => dataplaneWildcard(entry.update, ordered.length - i, entry.id));
    this.#cascading = ordered.filter((entry, i) => rules[i]!.cascade);
    const signature = JSON.stringify(rules);
    if (signature !== this.#installed) {
      this.options.dataplane.setWildcards(rules);
      this.#installed = signature;
    }
    const advertiser = this.options.advertiser;
    if (!advertiser) return;
    const prefixes = [...new Set(ordered.flatMap((entry) => (entry.update.actions.advertise ? [prefixOf(entry.update.actions.advertise)] : [])))].sort();
    const advertised = prefixes.join(',');
    if (advertised === this.#advertised) return;
    this.#advertised = advertised;
    this.#advertising = this.#advertising.then(() => advertiser.update(prefixes)).catch(() => {
      // The next change retries with the full set.
      this.#advertised = '';
    });
  }
}

/** Interest matches go to the criteria's address, or back to the manager when it names none. */
function replyTarget(criteria: InterestCriteria | undefined, from: RemoteInfo): { address: string; port: number } {
  return criteria && criteria.ip !== '0.0.0.0' && criteria.ip !== '::' ? { address: criteria.ip, port: criteria.port } : { address: from.address, port: from.port };
}

function prefixOf(advertise: { address: string; mask?: string }): string {
  const bits = advertise.mask ? advertise.mask.split('.').reduce((n, octet) => n + popcount(Number(octet)), 0) : 32;
  return `${advertise.address}/${bits}`;
}

function popcount(byte: number): number {
  let n = 0;
  for (let b = byte; b; b >>= 1) n += b & 1;
  return n;
}
