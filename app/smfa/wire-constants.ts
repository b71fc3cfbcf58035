/** Numeric values that appear on the wire; docs/smfa-wire.md is the normative description. */

export const PROTOCOL_VERSION = 1;

/** Default UDP port; not IANA-registered, so deployments may override it. */
export const DEFAULT_PORT = 7801;
/** Organization-local scope (RFC 2365) so affinity announcements never leave the site. */
export const DEFAULT_MULTICAST_GROUP_V4 = '239.192.78.1';
/** Site-local transient IPv6 group (RFC 4291 scope 5). */
export const DEFAULT_MULTICAST_GROUP_V6 = 'ff15::7801';

export const MESSAGE_HEADER_LENGTH = 4;
export const SEGMENT_HEADER_LENGTH = 4;
export const SEGMENT_ALIGNMENT = 4;
export const REQUIRED_FLAG = 0x80;

export const MessageTypeCode = {
  'affinity-update-wildcard': 1,
  'affinity-update-fixed': 2,
  'affinity-update-deny': 3,
  'interest-match-wildcard': 4,
  'interest-match-fixed': 5,
  'ip-packet-only': 6,
} as const;
export type MessageType = keyof typeof MessageTypeCode;

export const SegmentTypeCode = {
  security: 1,
  'wildcard-affinity': 2,
  'fixed-affinity': 3,
  'affinity-identifier': 4,
  'service-precedence': 5,
  'backup-precedence': 6,
  'sm-interest-data': 7,
  'fa-interest-data': 8,
  identity: 9,
  'action-list': 10,
  'ip-packet': 11,
  // Actions live in their own range so an action list can be checked against it at a glance.
  nat: 0x20,
  'sequence-adjust': 0x21,
  advertise: 0x22,
  'interest-criteria': 0x23,
} as const;
export type SegmentKind = keyof typeof SegmentTypeCode;

export const DispatchMethodCode = {
  none: 0,
  'mac-rewrite': 1,
  'ip-in-ip': 2,
  gre: 3,
  gue: 4,
} as const;
export type DispatchMethod = keyof typeof DispatchMethodCode;

export const SecurityTypeCode = { 'hmac-sha256': 1 } as const;
export const HMAC_SHA256_LENGTH = 32;

export function invert<K extends string>(table: Record<K, number>): Map<number, K> {
  return new Map(Object.entries(table).map(([name, code]) => [code as number, name as K]));
}
