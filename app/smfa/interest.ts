/* Interest bits (SMFA-R15): the data plane evaluates the criteria; a manager that gets a packet
 * reads the bits it shows. The bit numbers are the data plane's own (one definition). */
import { InterestBit } from '../../firmware/dataplane-types.js';
import { PROTOCOL_TCP, PROTOCOL_UDP, type ParsedPacket } from './ip-packet.js';

export { InterestBit };
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
