/* SMFA affinities and actions -> data plane rules, and the actions this agent cannot perform
 * (SMFA-R7: those are denied). The data plane evaluates interest criteria itself, on wildcards
 * and fixed affinities (SMFA-R15, R25); sequence adjustment goes to the data plane on fixed
 * affinities (SMFA-R13); the information flag becomes per-forward-IP counters (SMFA-R11). */
import type { Action, DispatchMode, FixedAffinity as DpFixed, InterestCriteria as DpInterest, WildcardAffinity as DpWildcard } from '../../firmware/dataplane.js';
import type { ActionListEntry, AffinityUpdateFixed, AffinityUpdateWildcard, FixedActions, InterestCriteria, Nat } from './types.js';
import { SegmentTypeCode, type DispatchMethod } from './wire-constants.js';

const DISPATCH: Record<Exclude<DispatchMethod, 'none'>, DispatchMode> = { 'mac-rewrite': 'mac', 'ip-in-ip': 'ipip', gre: 'gre', gue: 'gue' };

/** The all-zero address of either family: "leave unchanged" in NAT, "drop" as a forward IP. */
function isUnset(ip: string): boolean {
  return ip === '0.0.0.0' || ip === '::';
}

function isIpv6(ip: string): boolean {
  return ip.includes(':');
}

export interface Capabilities {
  /** Advertise needs a routing daemon (an Advertiser). */
  advertise: boolean;
}

function dpNat(nat: Nat | undefined): Action & { type: 'forward' } {
  const action: Action & { type: 'forward' } = { type: 'forward' };
  if (!nat) return action;
  action.nat = {};
  if (!isUnset(nat.srcIp)) action.nat.srcIp = nat.srcIp;
  if (!isUnset(nat.dstIp)) action.nat.dstIp = nat.dstIp;
  if (nat.srcPort) action.nat.srcPort = nat.srcPort;
  if (nat.dstPort) action.nat.dstPort = nat.dstPort;
  return action;
}

const supportedActions = (caps: Capabilities, fixed: boolean): Set<number> => {
  const types = new Set<number>([SegmentTypeCode.nat, SegmentTypeCode['interest-criteria']]);
  if (fixed) types.add(SegmentTypeCode['sequence-adjust']); /* the data plane adjusts on exact flows only */
  if (!fixed && caps.advertise) types.add(SegmentTypeCode.advertise);
  return types;
};

function presentActions(actions: FixedActions & { advertise?: unknown }): number[] {
  const present: number[] = [];
  if (actions.nat) present.push(SegmentTypeCode.nat);
  if (actions.sequenceAdjust) present.push(SegmentTypeCode['sequence-adjust']);
  if (actions.advertise) present.push(SegmentTypeCode.advertise);
  if (actions.interestCriteria) present.push(SegmentTypeCode['interest-criteria']);
  return present;
}

/** Actions the update carries or announces in its action list that this agent cannot perform. */
export function unsupportedActions(update: AffinityUpdateWildcard | AffinityUpdateFixed, caps: Capabilities): ActionListEntry[] {
  const supported = supportedActions(caps, update.type === 'affinity-update-fixed');
  const announced = update.type === 'affinity-update-wildcard' ? (update.actionList ?? []).map((e) => e.segmentType) : [];
  const wanted = new Set([...presentActions(update.actions), ...announced]);
  // Hold waits for a fixed affinity: on a fixed affinity there is nothing to wait for.
  if (update.type === 'affinity-update-fixed' && (update.actions.interestCriteria?.hold ?? 0) !== 0) supported.delete(SegmentTypeCode['interest-criteria']);
  if (update.type === 'affinity-update-wildcard' && isIpv6(update.wildcard.srcIp)) {
    // The data plane translates IPv6 addresses on exact flows only, cascades IPv4 wildcards only,
    // and the route advertiser's bird configuration is IPv4.
    supported.delete(SegmentTypeCode.nat);
    supported.delete(SegmentTypeCode.advertise);
    if (cascades(update)) supported.delete(SegmentTypeCode['interest-criteria']);
  }
  return [...wanted].filter((type) => !supported.has(type)).map((segmentType) => ({ segmentType, required: true }));
}

function dpInterest(criteria: InterestCriteria | undefined): DpInterest | undefined {
  if (!criteria || criteria.mask === 0) return undefined;
  return { mask: criteria.mask, data: criteria.data & criteria.mask, copy: criteria.copy & criteria.mask, hold: criteria.hold & criteria.mask };
}

/** Why the data plane cannot take this fixed affinity although it can do its actions, if it cannot:
 * an IPv6 flow is neither dispatched (its tunnels and MAC rewrite take IPv4 forward IPs) nor
 * counted per forward IP (the counters are keyed by IPv4 address). */
export function unsupportedFixed(update: AffinityUpdateFixed): string | undefined {
  if (!isIpv6(update.fixed.key.srcIp)) return undefined;
  if (update.fixed.dispatch !== 'none') return 'dispatch of an IPv6 flow';
  if (update.fixed.information) return 'information flag on an IPv6 flow';
  return undefined;
}

/** A service that only watches (every interesting packet is copied, no NAT) does not decide where
 * packets go: the next services by precedence do (cascading, SMFA-R18). Bits it also holds send the
 * original up instead - nothing of its own ends a wait in the data plane (the seed's fallback when
 * a packet cannot be held) - and the packet it returns continues after it. */
export function cascades(update: AffinityUpdateWildcard): boolean {
  const criteria = update.actions.interestCriteria;
  return criteria !== undefined && criteria.mask !== 0 && (criteria.mask & ~criteria.copy) === 0 && !update.actions.nat;
}

/** `id` comes back with the packets the wildcard's interest criteria send up. */
export function dataplaneWildcard(update: AffinityUpdateWildcard, precedence: number, id: number): DpWildcard {
  const w = update.wildcard;
  const cascading = cascades(update);
  let interest = dpInterest(update.actions.interestCriteria);
  if (interest && cascading) interest = { ...interest, copy: interest.copy & ~interest.hold, hold: 0 };
  return {
    protocol: w.protocol === 0 ? 'any' : w.protocol,
    srcIp: w.srcIp,
    srcMask: w.srcMask,
    dstIp: w.dstIp,
    dstMask: w.dstMask,
    srcPort: w.srcPort,
    dstPort: w.dstPort,
    precedence,
    id,
    action: dpNat(update.actions.nat),
    ...(interest ? { interest } : {}),
    ...(cascading ? { cascade: true } : {}),
  };
}

/** Forward IP 0 drops (after the affinity's counters, SMFA-R10); dispatch sends to the forward IP unchanged. */
export function dataplaneFixed(update: AffinityUpdateFixed): DpFixed {
  const f = update.fixed;
  const key = { protocol: f.key.protocol, srcIp: f.key.srcIp, dstIp: f.key.dstIp, srcPort: f.key.srcPort, dstPort: f.key.dstPort };
  const interest = dpInterest(update.actions.interestCriteria);
  // Criteria apply before the action: a dropped flow can still send notices.
  const extras = interest ? { interest } : {};
  if (isUnset(f.forwardIp)) return { key, ttlSeconds: f.ttlSeconds, action: { type: 'drop' }, ...extras };
  const action = dpNat(update.actions.nat);
  if (f.dispatch !== 'none') action.dispatch = { mode: DISPATCH[f.dispatch], forwardIp: f.forwardIp };
  const seq = update.actions.sequenceAdjust;
  return {
    key,
    ttlSeconds: f.ttlSeconds,
    action,
    ...(seq ? { seqAdjust: { ...seq } } : {}),
    ...extras,
    ...(f.information ? { statsIp: f.forwardIp } : {}),
  };
}
