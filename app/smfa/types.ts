import type { DispatchMethod } from './wire-constants.js';

/** IPv4 dotted quad or IPv6 text; decoded values are canonical (RFC 5952 for IPv6). */
export type IpAddress = string;

export interface AffinityKey {
  protocol: number;
  srcIp: IpAddress;
  dstIp: IpAddress;
  srcPort: number;
  dstPort: number;
}

export interface WildcardAffinity {
  protocol: number;
  srcIp: IpAddress;
  srcMask: IpAddress;
  dstIp: IpAddress;
  dstMask: IpAddress;
  srcPort: number;
  dstPort: number;
  dispatch: DispatchMethod;
  information: boolean;
  ttlSeconds: number;
}

export interface FixedAffinity {
  key: AffinityKey;
  dispatch: DispatchMethod;
  information: boolean;
  /** Carries its own family on the wire; the forwarding agent dispatches IPv4 flows only (unsupportedFixed). */
  forwardIp: IpAddress;
  ttlSeconds: number;
}

export interface AffinityIdentifier {
  key: AffinityKey;
  dispatch: DispatchMethod;
  information: boolean;
  /** Interest bits (TCP 0 FIN .. 8 fragment, 15 all packets) that caused the match. */
  interestReasons: number;
}

export interface ServicePrecedence {
  searchOrder: 'lower-first' | 'higher-first';
  value: number;
}

export interface Identity {
  ip: IpAddress;
  hostName: string;
}

/** An all-zero address or a zero port leaves that packet field unchanged. */
export interface Nat {
  srcIp: IpAddress;
  srcPort: number;
  dstIp: IpAddress;
  dstPort: number;
}

export interface SequenceAdjust {
  seqDelta: number;
  initialSeq: number;
  ackDelta: number;
  initialAck: number;
}

export interface Advertise {
  address: IpAddress;
  mask?: IpAddress;
}

/** Each of mask/data/copy/hold is a 16-bit vector in the interest-bit code. */
export interface InterestCriteria {
  ip: IpAddress;
  port: number;
  mask: number;
  data: number;
  copy: number;
  hold: number;
}

export interface ActionListEntry {
  segmentType: number;
  required: boolean;
}

export interface Security {
  keyId: number;
  senderId: number;
  sequence: bigint;
  mac: Buffer;
}

export type Segment =
  | { kind: 'security'; value: Security }
  | { kind: 'wildcard-affinity'; value: WildcardAffinity }
  | { kind: 'fixed-affinity'; value: FixedAffinity }
  | { kind: 'affinity-identifier'; value: AffinityIdentifier }
  | { kind: 'service-precedence'; value: ServicePrecedence }
  | { kind: 'backup-precedence'; value: number }
  | { kind: 'sm-interest-data'; value: Buffer }
  | { kind: 'fa-interest-data'; value: Buffer }
  | { kind: 'identity'; value: Identity }
  | { kind: 'action-list'; value: ActionListEntry[] }
  | { kind: 'ip-packet'; value: Buffer }
  | { kind: 'nat'; value: Nat }
  | { kind: 'sequence-adjust'; value: SequenceAdjust }
  | { kind: 'advertise'; value: Advertise }
  | { kind: 'interest-criteria'; value: InterestCriteria };

export type SegmentValue<K extends Segment['kind']> = Extract<Segment, { kind: K }>['value'];

export interface FixedActions {
  nat?: Nat;
  sequenceAdjust?: SequenceAdjust;
  interestCriteria?: InterestCriteria;
}

export interface WildcardActions extends FixedActions {
  advertise?: Advertise;
}

export interface AffinityUpdateWildcard {
  type: 'affinity-update-wildcard';
  wildcard: WildcardAffinity;
  actionList?: ActionListEntry[];
  servicePrecedence?: ServicePrecedence;
  backupPrecedence?: number;
  identity?: Identity;
  smInterestData?: Buffer;
  actions: WildcardActions;
}

export interface AffinityUpdateFixed {
  type: 'affinity-update-fixed';
  fixed: FixedAffinity;
  servicePrecedence?: ServicePrecedence;
  backupPrecedence?: number;
  identity?: Identity;
  smInterestData?: Buffer;
  faInterestData?: Buffer;
  ipPacket?: Buffer;
  actions: FixedActions;
}

export type OriginalAffinity =
  | { kind: 'wildcard'; affinity: WildcardAffinity }
  | { kind: 'fixed'; affinity: FixedAffinity };

export interface AffinityUpdateDeny {
  type: 'affinity-update-deny';
  /** Segment types the receiver could not process. */
  actionList: ActionListEntry[];
  originalAffinity?: OriginalAffinity;
  identity?: Identity;
  smInterestData?: Buffer;
  faInterestData?: Buffer;
}

export interface InterestMatch {
  type: 'interest-match-wildcard' | 'interest-match-fixed';
  affinity: AffinityIdentifier;
  identity?: Identity;
  smInterestData?: Buffer;
  faInterestData?: Buffer;
  ipPacket?: Buffer;
}

export interface IpPacketOnly {
  type: 'ip-packet-only';
  ipPacket: Buffer;
}

export type Message = AffinityUpdateWildcard | AffinityUpdateFixed | AffinityUpdateDeny | InterestMatch | IpPacketOnly;
