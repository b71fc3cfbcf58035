/* The typed surface of the data plane as the control application sees it. Addresses are strings
 * (dotted IPv4 or IPv6), ports are numbers in host order; the binding converts. */

export interface EalOptions {
  /** lcores to use; the first is the main lcore (the Node thread), the rest run workers. */
  lcores: number[];
  /** Memory in MiB. Without hugepages (`noHuge`) this is ordinary process memory. */
  memoryMb: number;
  noHuge?: boolean;
  inMemory?: boolean;
  /** Unique per process so several data planes can run on one host. */
  filePrefix: string;
  /** Virtual devices, e.g. `net_tap0,iface=dtap0` or `net_af_packet0,iface=veth1`. */
  vdevs?: string[];
  /** PCI devices to use; when empty and `vdevs` are given, PCI scanning is disabled. */
  allowPci?: string[];
  logLevel?: 'emerg' | 'alert' | 'crit' | 'error' | 'warning' | 'notice' | 'info' | 'debug';
  extraArgs?: string[];
}

export interface TcpTimeouts {
  synSeconds: number;
  establishedSeconds: number;
  finSeconds: number;
  rstSeconds: number;
  udpSeconds: number;
  otherSeconds: number;
}

export type MissPolicy = 'drop' | 'punt' | 'route';

export interface DataplaneOptions {
  /** Fixed affinities the control application can install (the manager table). */
  affinityCapacity?: number;
  /** Connections each worker can track for virtual services. */
  flowCapacityPerWorker?: number;
  /** What happens to an IPv4 packet that matches no affinity (SMFA-R2). */
  missPolicy?: MissPolicy;
  timeouts?: Partial<TcpTimeouts>;
  /** Packets a worker may hold in its mbuf pool, per port queue. */
  mbufsPerWorker?: number;
  /** Packets kept for their flow's fixed affinity (interest criteria hold flag), per worker, and
   * for how long before they are dropped (`hold_timeout`). Defaults 1024 and 2000 ms. */
  hold?: { capacityPerWorker?: number; timeoutMs?: number };
}

export interface PortInfo {
  id: number;
  name: string;
  driver: string;
  mac: string;
  rxQueues: number;
  txQueues: number;
  rss: boolean;
  linkUp: boolean;
  speedMbps: number;
}

export interface PortConfig {
  /** The unit's own IPv4 address on this port (answers ARP and ping). */
  address?: string;
  prefixLength?: number;
  /** The unit's own IPv6 address on this port (answers neighbour solicitations and ping; the
   * source of its own solicitations). */
  address6?: string;
  /** Default 64. */
  prefixLength6?: number;
  promiscuous?: boolean;
}

export type Protocol = 'tcp' | 'udp' | 'icmp';

export interface FlowKey {
  protocol: Protocol | number;
  srcIp: string;
  srcPort: number;
  dstIp: string;
  dstPort: number;
}

export interface Nat {
  srcIp?: string;
  srcPort?: number;
  dstIp?: string;
  dstPort?: number;
}

export type DispatchMode = 'mac' | 'ipip' | 'gre' | 'gue';

/** Layer-2/3 marks applied on the way out (SR-R5). */
export interface QosAction {
  /** DSCP, 0-63 (IPv4 TOS or IPv6 traffic class; ECN bits kept). */
  dscp?: number;
  /** 802.1p priority 0-7 of the pushed or present VLAN tag. */
  pcp?: number;
  /** Push an 802.1Q tag with this TCI (VLAN id and priority bits). */
  vlanPush?: number;
  vlanPop?: boolean;
  /** Push an MPLS label (20 bits). */
  mplsPush?: number;
  mplsPop?: boolean;
}

export type Action =
  | {
      type: 'forward';
      /** Output port; omitted means "route by destination (after NAT) or forward IP". */
      port?: number;
      /** Next-hop MAC when `port` is given; omitted means "resolve the destination". */
      nextHopMac?: string;
      nat?: Nat;
      /** Send to forwardIp without rewriting the destination (SMFA-R10). */
      dispatch?: { mode: DispatchMode; forwardIp: string; guePort?: number };
      qos?: QosAction;
    }
  | { type: 'drop' }
  | { type: 'punt' }
  /** Wildcards only: choose a server of the service in the data plane and create the flow. */
  | { type: 'service'; serviceId: number };

/** TCP sequence-number adjustment (SMFA-R13): seq += seqDelta from initialSeq on, ack += ackDelta
 * from initialAck on (32-bit serial arithmetic). */
export interface SeqAdjust {
  seqDelta: number;
  initialSeq: number;
  ackDelta: number;
  initialAck: number;
}

/** Interest bits (SMFA-R15): TCP flags FIN..URG are bits 0-5, then payload present, first payload,
 * fragment, and "every packet". */
export const InterestBit = { fin: 0, syn: 1, rst: 2, psh: 3, ack: 4, urg: 5, data: 6, firstData: 7, fragment: 8, all: 15 } as const;

/** Interest criteria evaluated by the data plane, each a 16-bit set of interest bits. A packet
 * showing a bit of `mask` is interesting: `hold` keeps it until its flow's fixed affinity is
 * installed (wildcards only), `copy` lets it go on by the affinity's action and sends a copy up,
 * neither sends the packet itself up; `data` puts the packet's bytes into what goes up. Other
 * packets take the affinity's action without any punt. */
export interface InterestCriteria {
  mask: number;
  data: number;
  copy: number;
  hold: number;
}

export interface FixedAffinity {
  key: FlowKey;
  action: Action;
  /** TCP keys only. */
  seqAdjust?: SeqAdjust;
  /** E.g. a notice of FIN and RST (copy flag) so the manager learns connection ends (SMFA-R25). */
  interest?: InterestCriteria;
  /** Information flag (SMFA-R11): count the affinity's packets and bytes under this forward IP. */
  statsIp?: string;
  /** Seconds until expiry (SMFA-R17); 0 deletes. */
  ttlSeconds: number;
}

export interface InstalledAffinity extends FixedAffinity {
  packets: number;
  bytes: number;
  /** Where it lives: installed by a manager, or learned by a worker for a virtual service. */
  origin: 'manager' | 'learned';
  tcpState?: 'syn' | 'established' | 'fin' | 'rst' | 'none';
}

/** Addresses and masks are all IPv4 or all IPv6 (the rule then matches IPv6 packets only). */
export interface WildcardAffinity {
  protocol: Protocol | number | 'any';
  srcIp: string;
  srcMask: string;
  dstIp: string;
  dstMask: string;
  /** 0 matches any port. */
  srcPort: number;
  dstPort: number;
  /** Higher wins when several wildcards match (SMFA-R18). */
  precedence: number;
  /** Reported with the packets this wildcard punts (default 0). */
  id?: number;
  action: Action;
  interest?: InterestCriteria;
  /** Cascading (SMFA-R18, IPv4): after this rule's interest criteria, every lower-precedence
   * cascading rule that matches applies its own, then the best lower-precedence wildcard that does
   * not cascade decides; when none matches, the last cascading rule's action. A packet such a rule
   * sends up continues after it when its manager returns it (`injectForProcessing`'s
   * `afterWildcard`). Its criteria cannot hold packets. */
  cascade?: boolean;
}

export interface ServiceServer {
  ip: string;
  port: number;
  weight: number;
}

/** How new connections reach the chosen server. */
export type ForwardingMode = 'nat' | 'fullnat' | 'dsr' | 'ipip' | 'gre' | 'gue';
export type Algorithm = 'maglev' | 'wrr';

/** An IPv6 VIP makes an IPv6 service: its servers and full-NAT address are IPv6 too, and the
 * tunnel modes carry IPv6 in IPv6 from the port's address6. */
export interface ServiceDefinition {
  id: number;
  vip: string;
  /** 0 = every port (the client's destination port is kept). */
  port: number;
  protocol: Protocol;
  servers: ServiceServer[];
  mode?: ForwardingMode;
  algorithm?: Algorithm;
  /** Maglev lookup table size, a prime (default 65537). */
  tableSize?: number;
  /** Full NAT: the unit's source address and its source port range (inclusive). */
  snat?: { ip: string; portMin: number; portMax: number };
  /** GUE mode: the servers' GUE port (default 6080). */
  guePort?: number;
  /** QoS marks (SR-R5) on the service's packets towards its servers (tunnel modes: DSCP on both headers). */
  qosToServer?: QosAction;
  /** QoS marks on the replies towards clients: nat and fullnat only (other modes' replies bypass the unit). */
  qosToClient?: QosAction;
}

export interface PortStats {
  id: number;
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  rxMissed: number;
  rxErrors: number;
  txErrors: number;
}

export interface LcoreStats {
  lcore: number;
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  busyPolls: number;
  idlePolls: number;
}

export interface DataplaneStats {
  ports: PortStats[];
  lcores: LcoreStats[];
  actions: Record<'forward' | 'drop' | 'punt' | 'service' | 'local', number>;
  drops: Record<string, number>;
  lookups: { managerHits: number; learnedHits: number; wildcardHits: number; misses: number };
  flows: { manager: number; learned: number; created: number; expired: number };
  punted: number;
  injected: number;
  /** Forwarding delivery (cluster.md CL-R2): frames of other members' work units this master
   * passed on to their owner. */
  unitForwarded: number;
  /** Interest criteria: matches sent up (of which copies), packets held, released through their
   * fixed affinity, sent up because the hold buffer was full, and copies lost (no mbuf or queue room). */
  interest: { matches: number; copies: number; held: number; released: number; overflows: number; lost: number };
  /** Per-service server counters: new flows and packets sent to each server. */
  servers: {
    serviceId: number;
    ip: string;
    port: number;
    weight: number;
    flows: number;
    packets: number;
    bytes: number;
    /** SYN -> SYN-ACK times seen in NAT modes: count and total microseconds. */
    handshakes: number;
    handshakeMicros: number;
  }[];
}

export interface PuntedPacket {
  port: number;
  /** The frame; for an interest match without `interest.packet`, only its headers. */
  frame: Buffer;
  /** Why it came up: a punt action, the miss policy, a work unit this member holds for now, or an
   * affinity's interest criteria. */
  reason: 'action' | 'miss' | 'held' | 'interest';
  /** For 'held': the work unit the packet waits for. */
  unit: number;
  /** The id of the wildcard that punted it (0: not a wildcard). */
  wildcardId: number;
  interest?: {
    /** The criteria's interest bits the packet showed. */
    reasons: number;
    /** The manager asked for the packet's bytes, or this is the original itself. */
    packet: boolean;
    /** The original went on by the affinity's action. */
    copy: boolean;
    /** The original waits in the data plane for the flow's fixed affinity. */
    held: boolean;
    /** A fixed affinity's criteria (else a wildcard's). */
    fixed: boolean;
  };
}

export interface ForwardIpCounters {
  ip: string;
  packets: number;
  bytes: number;
}

/** This member's relation to a work unit (cluster.md CL-R3/R4). */
export type UnitState = 'owned' | 'foreign' | 'hold';
/** A work unit as the data plane takes it: a state, or (forwarding delivery, at the master) the
 * owner's data-port MACs by port id, which its frames are passed on to. */
export type UnitEntry = UnitState | { forwardTo: readonly string[] };
/** How a local address answers ARP (cluster delivery modes): with the port's MAC, with a MAC the
 * cluster members share, or not at all. */
export type ArpAnswer = 'port-mac' | 'silent' | { sharedMac: string };
