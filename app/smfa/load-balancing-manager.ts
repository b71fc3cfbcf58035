/* The load-balancing service manager (SMFA-R19..R25): per virtual service a wildcard for clients
 * -> VIP and one per server for server -> clients, all asking for every packet of a flow the agent
 * does not know. A SYN gets a server; the agent that sent a packet up gets the fixed affinity of
 * that direction (#1 DNAT to the server, #2 SNAT back to the VIP) and its packet back. A packet of
 * a known flow from any agent gets the decision already made (need to know). The fixed affinities
 * ask the agents for a notice of FIN and RST, so the manager learns when connections end and keeps
 * their decision only for the sticky time after that. */
import type { RemoteInfo } from 'node:dgram';
import { addressFromBytes, addressToBytes, familyOf, type AddressFamily } from './ip-address.js';
import { ALL_PACKETS, InterestBit, interestReasons } from './interest.js';
import { PROTOCOL_TCP, parseIpPacket } from './ip-packet.js';
import { FlowDecisions } from './flow-decisions.js';
import { chooseServer, type Server } from './server-choice.js';
import type { AffinityKey, AffinityUpdateFixed, AffinityUpdateWildcard, Identity, InterestMatch, Message, ServicePrecedence } from './types.js';
import { SmfaTransport, type TransportOptions } from './udp-transport.js';

export interface VirtualService {
  vip: string;
  port: number;
  protocol: number;
  servers: Server[];
  /** Announce the VIP into routing while the wildcard lives (SMFA-R14). */
  advertise?: boolean;
}

export interface LoadBalancingManagerOptions {
  transport: Omit<TransportOptions, 'onMessage'>;
  services: VirtualService[];
  /** The clients this manager serves (SMFA-R22: managers of one service split clients), mask may be non-contiguous. */
  clientDomain?: { ip: string; mask: string };
  servicePrecedence?: number;
  /** 0 for the primary; a backup sends the same affinities with a larger value (SMFA-R19). */
  backupPrecedence?: number;
  wildcardTtlSeconds?: number;
  fixedTtlSeconds?: number;
  /** How long the manager keeps a decision without seeing its flow (longer than the agents' TTL). */
  decisionSeconds?: number;
  stickySeconds?: number;
  identity?: Identity;
  /** Agents keep a flow's packet until the fixed affinity comes (hold flag) instead of sending it up. */
  holdPackets?: boolean;
  /** Fixed affinities with the information flag: agents count packets and bytes per server (SMFA-R11). */
  statistics?: boolean;
}

export interface ManagerCounters {
  decisions: number;
  needToKnow: number;
  adopted: number;
  notOurs: number;
  fixedSent: number;
  announcements: number;
  deniesReceived: number;
  /** FIN/RST notices from the agents' fixed affinities (SMFA-R25). */
  connectionNotices: number;
  /** Connections whose decision went from kept to sticky on the first FIN or RST seen. */
  connectionsClosing: number;
  /** Decided flows moved to another server (removeServer): TTL-0 deletes sent, then the new affinities (SMFA-R24). */
  flowsMoved: number;
  fixedDeletesSent: number;
}

interface Classified {
  service: VirtualService;
  clientKey: AffinityKey;
  toServer: boolean;
  /** Return traffic names its server in its source. */
  sourceServer?: Server;
}

/** Per address family: the unset address (any client; NAT leaves the field) and a host mask. */
const ANY: Record<AddressFamily, string> = { 4: '0.0.0.0', 6: '::' };
const HOST: Record<AddressFamily, string> = { 4: '255.255.255.255', 6: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' };
const TCP_REASONS = (1 << InterestBit.fin) | (1 << InterestBit.syn) | (1 << InterestBit.rst) | (1 << InterestBit.ack);
const CLOSING = (1 << InterestBit.fin) | (1 << InterestBit.rst);
/** On fixed affinities: the packet goes on to its server, a copy of its headers tells the manager. */
const CLOSING_NOTICE = { ip: ANY[4], port: 0, mask: CLOSING, data: 0, copy: CLOSING, hold: 0 };

/** The canonical text of an address (what decoded keys carry), so keys and services compare as strings. */
function canonical(ip: string): string {
  return addressFromBytes(addressToBytes(ip, familyOf(ip, 'address'), 'address'));
}

/** Services with canonical addresses; a client domain must be of each service's family. */
function checkedServices(options: LoadBalancingManagerOptions): VirtualService[] {
  return options.services.map((service) => {
    const family = familyOf(service.vip, 'vip');
    for (const server of service.servers) {
      if (familyOf(server.ip, 'server ip') !== family) throw new RangeError(`server ${server.ip} is not IPv${family} like the VIP ${service.vip}`);
    }
    const domain = options.clientDomain;
    if (domain && (familyOf(domain.ip, 'clientDomain.ip') !== family || familyOf(domain.mask, 'clientDomain.mask') !== family)) {
      throw new RangeError(`clientDomain ${domain.ip}/${domain.mask} is not IPv${family} like the VIP ${service.vip}`);
    }
    return { ...service, vip: canonical(service.vip), servers: service.servers.map((s) => ({ ...s, ip: canonical(s.ip) })) };
  });
}

export class LoadBalancingManager {
  readonly counters: ManagerCounters = {
    decisions: 0, needToKnow: 0, adopted: 0, notOurs: 0, fixedSent: 0, announcements: 0, deniesReceived: 0, connectionNotices: 0, connectionsClosing: 0, flowsMoved: 0, fixedDeletesSent: 0,
  };
  readonly denies: Message[] = [];
  readonly #decisions: FlowDecisions;
  readonly #precedence: ServicePrecedence;
  readonly #services: VirtualService[];
  #transport!: SmfaTransport;
  #refresh: NodeJS.Timeout | undefined;

  private constructor(private readonly options: LoadBalancingManagerOptions) {
    this.#decisions = new FlowDecisions((options.decisionSeconds ?? 300) * 1000, (options.stickySeconds ?? 10) * 1000);
    this.#precedence = { searchOrder: 'lower-first', value: options.servicePrecedence ?? 100 };
    this.#services = checkedServices(options);
  }

  static async start(options: LoadBalancingManagerOptions): Promise<LoadBalancingManager> {
    const manager = new LoadBalancingManager(options);
    manager.#transport = await SmfaTransport.open({ ...options.transport, onMessage: (m, from) => manager.#receive(m, from) });
    await manager.announce();
    // Refresh at a third of the TTL: two lost announcements in a row still leave the wildcards alive (SMFA-R17).
    const period = (manager.#wildcardTtl * 1000) / 3;
    manager.#refresh = setInterval(() => {
      manager.#decisions.expire(Date.now());
      manager.announce().catch(() => undefined);
    }, period);
    return manager;
  }

  get transport(): SmfaTransport {
    return this.#transport;
  }

  get decisionCount(): number {
    return this.#decisions.size;
  }

  get #wildcardTtl(): number {
    return this.options.wildcardTtlSeconds ?? 30;
  }

  /** Sends every wildcard to the agents' group; `ttlSeconds` 0 cancels them (hand-over, SMFA-R24). */
  async announce(ttlSeconds = this.#wildcardTtl): Promise<void> {
    for (const wildcard of this.#wildcards(ttlSeconds)) {
      this.counters.announcements++;
      await this.#transport.sendToGroup(wildcard);
    }
  }

  /** Stops refreshing and cancels the wildcards, so the agents stop sending packets here at once. */
  async withdraw(): Promise<void> {
    clearInterval(this.#refresh);
    await this.announce(0);
  }

  /** Takes a server out of every service: its decided flows move to the server the hash picks among the
   * others. Each agent that holds one of their affinities gets a TTL-0 delete first, then the new
   * affinity (SMFA-R24: an agent never holds two answers for one flow); then the server's return
   * wildcard is cancelled. Returns the number of flows moved. */
  async removeServer(removed: Server): Promise<number> {
    const server = { ip: canonical(removed.ip), port: removed.port };
    const same = (s: Server): boolean => s.ip === server.ip && s.port === server.port;
    const affected = this.#services.filter((service) => service.servers.some(same));
    const cancelled = this.#wildcards(0).filter((w) => w.wildcard.srcIp === server.ip && w.wildcard.srcPort === server.port);
    let moved = 0;
    for (const service of affected) {
      service.servers = service.servers.filter((s) => !same(s));
      for (const { clientKey, holders } of this.#decisions.flowsOf(server)) {
        if (this.#classify(clientKey)?.service !== service) continue;
        const next = service.servers.length > 0 ? chooseServer(service.servers, clientKey) : undefined;
        for (const holder of holders) {
          await this.#send(this.#fixedUpdate(service, clientKey, server, holder.toServer, 0), holder);
          this.counters.fixedDeletesSent++;
          if (next) await this.#send(this.#fixedUpdate(service, clientKey, next, holder.toServer, this.#fixedTtl), holder);
        }
        if (next) this.#decisions.change(clientKey, next);
        moved++;
      }
    }
    for (const wildcard of cancelled) await this.#transport.sendToGroup(wildcard);
    this.counters.flowsMoved += moved;
    return moved;
  }

  async stop(): Promise<void> {
    clearInterval(this.#refresh);
    await this.#transport.close();
  }

  #wildcards(ttlSeconds: number): AffinityUpdateWildcard[] {
    // Every packet of an unknown flow; the TCP bits make the reasons say what the packet was.
    const mask = ALL_PACKETS | TCP_REASONS;
    const hold = this.options.holdPackets ?? false;
    const interestCriteria = { ip: ANY[4], port: 0, mask, data: hold ? 0 : mask, copy: 0, hold: hold ? mask : 0 };
    const common = { dispatch: 'none' as const, information: false, ttlSeconds };
    const envelope = (wildcard: AffinityUpdateWildcard['wildcard'], advertise?: { address: string; mask: string }): AffinityUpdateWildcard => {
      const update: AffinityUpdateWildcard = {
        type: 'affinity-update-wildcard',
        wildcard,
        servicePrecedence: this.#precedence,
        backupPrecedence: this.options.backupPrecedence ?? 0,
        actions: advertise ? { interestCriteria, advertise } : { interestCriteria },
      };
      if (this.options.identity) update.identity = this.options.identity;
      return update;
    };
    return this.#services.flatMap((service) => {
      const family = familyOf(service.vip, 'vip');
      const domain = this.options.clientDomain ?? { ip: ANY[family], mask: ANY[family] };
      const host = HOST[family];
      return [
        envelope(
          { ...common, protocol: service.protocol, srcIp: domain.ip, srcMask: domain.mask, srcPort: 0, dstIp: service.vip, dstMask: host, dstPort: service.port },
          service.advertise ? { address: service.vip, mask: host } : undefined,
        ),
        ...service.servers.map((server) =>
          envelope({ ...common, protocol: service.protocol, srcIp: server.ip, srcMask: host, srcPort: server.port, dstIp: domain.ip, dstMask: domain.mask, dstPort: 0 }),
        ),
      ];
    });
  }

  #receive(message: Message, from: RemoteInfo): void {
    if (message.type === 'interest-match-wildcard') return this.#interest(message, from);
    if (message.type === 'interest-match-fixed') return this.#connectionNotice(message);
    if (message.type === 'affinity-update-deny') {
      this.counters.deniesReceived++;
      this.denies.push(message);
    }
  }

  #classify(key: AffinityKey): Classified | undefined {
    for (const service of this.#services) {
      if (key.protocol !== service.protocol) continue;
      if (key.dstIp === service.vip && key.dstPort === service.port) return { service, clientKey: key, toServer: true };
      const sourceServer = service.servers.find((s) => s.ip === key.srcIp && s.port === key.srcPort);
      if (sourceServer) {
        const clientKey = { protocol: key.protocol, srcIp: key.dstIp, srcPort: key.dstPort, dstIp: service.vip, dstPort: service.port };
        return { service, clientKey, toServer: false, sourceServer };
      }
    }
    return undefined;
  }

  #interest(match: InterestMatch, from: RemoteInfo): void {
    const parsed = match.ipPacket && parseIpPacket(match.ipPacket);
    const key = parsed ? parsed.key : match.affinity.key;
    const reasons = parsed ? interestReasons(parsed) : match.affinity.interestReasons;
    const flow = this.#classify(key);
    if (!flow) {
      this.counters.notOurs++;
      return;
    }
    const now = Date.now();
    let server = this.#decisions.get(flow.clientKey);
    if (server) {
      this.counters.needToKnow++;
      this.#decisions.touch(flow.clientKey, now);
    } else {
      server = flow.sourceServer ?? chooseServer(flow.service.servers, flow.clientKey);
      // A flow seen first mid-connection (an agent's affinity expired, or the primary manager died):
      // the hash gives the server the first decision gave.
      if (flow.toServer && isOpening(reasons, key.protocol)) this.counters.decisions++;
      else this.counters.adopted++;
      this.#decisions.record(flow.clientKey, server, now);
    }
    if (key.protocol === PROTOCOL_TCP && (reasons & CLOSING) !== 0) this.#closing(flow.clientKey, now);
    this.#sendFixed(flow, server, match, from);
  }

  /** An agent saw a FIN or RST of a flow it forwards by our fixed affinity: only the sticky time
   * is left for the decision, so the last ACK or a late RST still reaches the same server (SMFA-R23). */
  #connectionNotice(match: InterestMatch): void {
    this.counters.connectionNotices++;
    const flow = this.#classify(match.affinity.key);
    if (!flow || (match.affinity.interestReasons & CLOSING) === 0) return;
    this.#closing(flow.clientKey, Date.now());
  }

  #closing(clientKey: AffinityKey, now: number): void {
    if (this.#decisions.closing(clientKey, now)) this.counters.connectionsClosing++;
  }

  #sendFixed(flow: Classified, server: Server, match: InterestMatch, to: RemoteInfo): void {
    const fixed = this.#fixedUpdate(flow.service, flow.clientKey, server, flow.toServer, this.#fixedTtl);
    if (match.faInterestData) fixed.faInterestData = match.faInterestData;
    if (match.ipPacket) fixed.ipPacket = match.ipPacket;
    this.#decisions.addHolder(flow.clientKey, { address: to.address, port: to.port, toServer: flow.toServer });
    this.#send(fixed, to).catch(() => {
      // Lost: the agent sends the flow's next packet up again.
    });
  }

  async #send(fixed: AffinityUpdateFixed, to: { address: string; port: number }): Promise<void> {
    this.counters.fixedSent++;
    await this.#transport.send(fixed, to.address, to.port);
  }

  /** Fixed affinity #1 (client -> VIP, DNAT to the server) or #2 (server -> client, SNAT to the VIP). */
  #fixedUpdate(service: VirtualService, client: AffinityKey, server: Server, toServer: boolean, ttlSeconds: number): AffinityUpdateFixed {
    const information = this.options.statistics ?? false;
    const notice = client.protocol === PROTOCOL_TCP ? { interestCriteria: CLOSING_NOTICE } : {};
    const any = ANY[familyOf(service.vip, 'vip')];
    const fixed: AffinityUpdateFixed = toServer
      ? {
          type: 'affinity-update-fixed',
          fixed: { key: client, dispatch: 'none', information, forwardIp: server.ip, ttlSeconds },
          actions: { nat: { srcIp: any, srcPort: 0, dstIp: server.ip, dstPort: server.port }, ...notice },
        }
      : {
          type: 'affinity-update-fixed',
          fixed: {
            key: { protocol: client.protocol, srcIp: server.ip, srcPort: server.port, dstIp: client.srcIp, dstPort: client.srcPort },
            dispatch: 'none', information, forwardIp: client.srcIp, ttlSeconds,
          },
          actions: { nat: { srcIp: service.vip, srcPort: service.port, dstIp: any, dstPort: 0 }, ...notice },
        };
    fixed.servicePrecedence = this.#precedence;
    fixed.backupPrecedence = this.options.backupPrecedence ?? 0;
    if (this.options.identity) fixed.identity = this.options.identity;
    return fixed;
  }

  get #fixedTtl(): number {
    return this.options.fixedTtlSeconds ?? 60;
  }
}

/** A TCP SYN without ACK, or the first datagram of any other protocol. */
function isOpening(reasons: number, protocol: number): boolean {
  if (protocol !== PROTOCOL_TCP) return true;
  return (reasons & (1 << InterestBit.syn)) !== 0 && (reasons & (1 << InterestBit.ack)) === 0;
}
