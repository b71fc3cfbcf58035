import type { Message, Segment, SegmentValue } from './types.js';
import type { MessageType } from './wire-constants.js';

type Present<T> = T extends undefined ? never : T;

function optional<K extends Segment['kind']>(kind: K, value: SegmentValue<K> | undefined): Segment[] {
  return value === undefined ? [] : [{ kind, value } as Segment];
}

/** Segments of a message in the canonical order the seed's figures use (security is added by the encoder). */
export function messageToSegments(msg: Message): Segment[] {
  switch (msg.type) {
    case 'affinity-update-wildcard':
      return [
        { kind: 'wildcard-affinity', value: msg.wildcard },
        ...optional('action-list', msg.actionList),
        ...optional('service-precedence', msg.servicePrecedence),
        ...optional('backup-precedence', msg.backupPrecedence),
        ...optional('identity', msg.identity),
        ...optional('sm-interest-data', msg.smInterestData),
        ...optional('nat', msg.actions.nat),
        ...optional('sequence-adjust', msg.actions.sequenceAdjust),
        ...optional('advertise', msg.actions.advertise),
        ...optional('interest-criteria', msg.actions.interestCriteria),
      ];
    case 'affinity-update-fixed':
      return [
        { kind: 'fixed-affinity', value: msg.fixed },
        ...optional('service-precedence', msg.servicePrecedence),
        ...optional('backup-precedence', msg.backupPrecedence),
        ...optional('nat', msg.actions.nat),
        ...optional('sequence-adjust', msg.actions.sequenceAdjust),
        ...optional('interest-criteria', msg.actions.interestCriteria),
        ...optional('identity', msg.identity),
        ...optional('sm-interest-data', msg.smInterestData),
        ...optional('fa-interest-data', msg.faInterestData),
        ...optional('ip-packet', msg.ipPacket),
      ];
    case 'affinity-update-deny':
      return [
        { kind: 'action-list', value: msg.actionList },
        ...(msg.originalAffinity?.kind === 'wildcard' ? optional('wildcard-affinity', msg.originalAffinity.affinity) : []),
        ...(msg.originalAffinity?.kind === 'fixed' ? optional('fixed-affinity', msg.originalAffinity.affinity) : []),
        ...optional('identity', msg.identity),
        ...optional('sm-interest-data', msg.smInterestData),
        ...optional('fa-interest-data', msg.faInterestData),
      ];
    case 'interest-match-wildcard':
    case 'interest-match-fixed':
      return [
        { kind: 'affinity-identifier', value: msg.affinity },
        ...optional('identity', msg.identity),
        ...optional('sm-interest-data', msg.smInterestData),
        ...optional('fa-interest-data', msg.faInterestData),
        ...optional('ip-packet', msg.ipPacket),
      ];
    case 'ip-packet-only':
      return [{ kind: 'ip-packet', value: msg.ipPacket }];
  }
}

/** Decoded segments by kind; the decoder has already enforced the message's rule. */
export type SegmentSet = { [K in Segment['kind']]?: SegmentValue<K> };

function defined<T extends object>(fields: T): { [K in keyof T]?: Present<T[K]> } {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Present<T[K]> };
}

/** Builds the typed message; absent optional parts are left out rather than set to undefined. */
export function segmentsToMessage(type: MessageType, s: SegmentSet): Message {
  const echoed = defined({ identity: s.identity, smInterestData: s['sm-interest-data'], faInterestData: s['fa-interest-data'] });
  const actions = defined({ nat: s.nat, sequenceAdjust: s['sequence-adjust'], interestCriteria: s['interest-criteria'] });
  const precedence = defined({ servicePrecedence: s['service-precedence'], backupPrecedence: s['backup-precedence'] });
  switch (type) {
    case 'affinity-update-wildcard':
      return {
        type,
        wildcard: s['wildcard-affinity']!,
        ...defined({ actionList: s['action-list'], identity: s.identity, smInterestData: s['sm-interest-data'] }),
        ...precedence,
        actions: { ...actions, ...defined({ advertise: s.advertise }) },
      };
    case 'affinity-update-fixed':
      return { type, fixed: s['fixed-affinity']!, ...precedence, ...echoed, ...defined({ ipPacket: s['ip-packet'] }), actions };
    case 'affinity-update-deny': {
      const wildcard = s['wildcard-affinity'];
      const fixed = s['fixed-affinity'];
      const originalAffinity =
        wildcard !== undefined ? { kind: 'wildcard' as const, affinity: wildcard } : fixed !== undefined ? { kind: 'fixed' as const, affinity: fixed } : undefined;
      return { type, actionList: s['action-list']!, ...defined({ originalAffinity }), ...echoed };
    }
    case 'interest-match-wildcard':
    case 'interest-match-fixed':
      return { type, affinity: s['affinity-identifier']!, ...echoed, ...defined({ ipPacket: s['ip-packet'] }) };
    case 'ip-packet-only':
      return { type, ipPacket: s['ip-packet']! };
  }
}
