/* Interest criteria (SMFA-R15): which packets go up to a manager, whether the packet travels in
 * the interest match, whether the agent keeps it until the manager's answer. */
import type { InterestCriteria } from './types.js';
import { PROTOCOL_TCP, PROTOCOL_UDP, type ParsedPacket } from './ip-packet.js';

export const InterestBit = { fin: 0, syn: 1, rst: 2, psh: 3, ack: 4, urg: 5, data: 6, firstData: 7, fragment: 8, all: 15 } as const;
export const ALL_PACKETS = 1 << InterestBit.all;
const TCP_FLAG_BITS = 0x3f;

/** The interest bits a packet carries: TCP flags 0-5 map one to one onto bits 0-5. */
export function interestReasons(packet: ParsedPacket): number {
  let reasons = ALL_PACKETS;
  if (packet.fragment) reasons |= 1 << InterestBit.fragment;
  if (packet.key.protocol === PROTOCOL_TCP) reasons |= packet.tcpFlags & TCP_FLAG_BITS;
  if ((packet.key.protocol === PROTOCOL_TCP || packet.key.protocol === PROTOCOL_UDP) && packet.payloadLength > 0) {
    reasons |= 1 << InterestBit.data;
  }
  return reasons;
}

export type InterestVerdict =
  /** Not interesting: the criteria do not ask for this packet. */
  | { kind: 'none' }
  /** Send an interest match; `includePacket` puts the packet in it; `hold` keeps the original at the agent. */
  | { kind: 'match'; reasons: number; includePacket: boolean; hold: boolean };

/** Data flag: include the packet. Copy flag: send a copy, then hold decides. Hold clear: the
 * original goes up (so it is included); hold set: the original waits for the fixed affinity. */
export function interestVerdict(criteria: InterestCriteria, reasons: number): InterestVerdict {
  const matched = reasons & criteria.mask;
  if (matched === 0) return { kind: 'none' };
  const hold = (matched & criteria.hold) !== 0;
  const includePacket = (matched & (criteria.data | criteria.copy)) !== 0 || !hold;
  return { kind: 'match', reasons: matched, includePacket, hold };
}
