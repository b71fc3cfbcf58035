import type { MessageType, SegmentKind } from './wire-constants.js';

export interface MessageRule {
  /** Segments the message cannot do without. */
  mandatory: readonly SegmentKind[];
  /** Segments the message may carry in addition; anything else is "not allowed here". */
  optional: readonly SegmentKind[];
}

const FIXED_ACTIONS = ['nat', 'sequence-adjust', 'interest-criteria'] as const;
const ECHOED = ['identity', 'sm-interest-data', 'fa-interest-data'] as const;

/** The table of docs/smfa-wire.md section "Messages". Security is allowed everywhere, first. */
export const MESSAGE_RULES: Record<MessageType, MessageRule> = {
  'affinity-update-wildcard': {
    mandatory: ['wildcard-affinity'],
    optional: ['security', 'action-list', 'service-precedence', 'backup-precedence', 'identity', 'sm-interest-data', ...FIXED_ACTIONS, 'advertise'],
  },
  'affinity-update-fixed': {
    mandatory: ['fixed-affinity'],
    optional: ['security', 'service-precedence', 'backup-precedence', ...FIXED_ACTIONS, ...ECHOED, 'ip-packet'],
  },
  'affinity-update-deny': {
    mandatory: ['action-list'],
    optional: ['security', 'wildcard-affinity', 'fixed-affinity', ...ECHOED],
  },
  'interest-match-wildcard': {
    mandatory: ['affinity-identifier'],
    optional: ['security', ...ECHOED, 'ip-packet'],
  },
  'interest-match-fixed': {
    mandatory: ['affinity-identifier'],
    optional: ['security', ...ECHOED, 'ip-packet'],
  },
  'ip-packet-only': {
    mandatory: ['ip-packet'],
    optional: ['security'],
  },
};

/**
 * Segments whose loss would change what the receiver does with the message, so a receiver that
 * cannot process them must drop the message and say so rather than act on part of it.
 */
export const SENT_AS_REQUIRED: ReadonlySet<SegmentKind> = new Set<SegmentKind>([
  'wildcard-affinity',
  'fixed-affinity',
  'affinity-identifier',
  'action-list',
  'ip-packet',
  'service-precedence',
  'backup-precedence',
  'nat',
  'sequence-adjust',
  'advertise',
  'interest-criteria',
]);

export function isAllowed(type: MessageType, kind: SegmentKind): boolean {
  const rule = MESSAGE_RULES[type];
  return rule.mandatory.includes(kind) || rule.optional.includes(kind);
}
