import { describe, expect, it } from 'vitest';
import { dataplaneFixed, dataplaneWildcard, unsupportedActions, unsupportedFixed } from './dataplane-actions.js';
import type { AffinityUpdateFixed, AffinityUpdateWildcard } from './types.js';
import { SegmentTypeCode } from './wire-constants.js';

const sequenceAdjust = { seqDelta: 1000, initialSeq: 5, ackDelta: 7, initialAck: 9 };

function fixedUpdate(actions: AffinityUpdateFixed['actions']): AffinityUpdateFixed {
  return {
    type: 'affinity-update-fixed',
    fixed: {
      key: { protocol: 6, srcIp: '10.1.0.2', dstIp: '10.1.0.100', srcPort: 40000, dstPort: 80 },
      dispatch: 'none',
      information: false,
      forwardIp: '10.2.0.11',
      ttlSeconds: 30,
    },
    actions,
  };
}

describe('wildcard rules for the data plane', () => {
  const watch = (actions: AffinityUpdateWildcard['actions']): AffinityUpdateWildcard => ({
    type: 'affinity-update-wildcard',
    wildcard: { protocol: 6, srcIp: '0.0.0.0', srcMask: '0.0.0.0', dstIp: '10.1.0.100', dstMask: '255.255.255.255', srcPort: 0, dstPort: 80, dispatch: 'none', information: false, ttlSeconds: 30 },
    actions,
  });
  const criteria = { ip: '0.0.0.0', port: 0, mask: 3, data: 0, copy: 3, hold: 0 };

  it('cascades a service that only watches (copies, no NAT) to the next one (SMFA-R18)', () => {
    expect(dataplaneWildcard(watch({ interestCriteria: criteria }), 2, 7)).toMatchObject({ id: 7, precedence: 2, cascade: true, interest: { mask: 3, copy: 3 } });
    expect(dataplaneWildcard(watch({ interestCriteria: { ...criteria, copy: 1 } }), 2, 7).cascade).toBeUndefined();
    const nat = { srcIp: '0.0.0.0', srcPort: 0, dstIp: '10.2.0.11', dstPort: 0 };
    expect(dataplaneWildcard(watch({ interestCriteria: criteria, nat }), 2, 7).cascade).toBeUndefined();
    expect(dataplaneWildcard(watch({}), 2, 7).cascade).toBeUndefined();
  });

  it('sends up the originals of the bits a cascading service also holds: its returned packet goes on after it', () => {
    const holding = dataplaneWildcard(watch({ interestCriteria: { ...criteria, data: 1, hold: 2 } }), 2, 7);
    expect(holding).toMatchObject({ cascade: true, interest: { mask: 3, data: 1, copy: 1, hold: 0 } });
    // A deciding service keeps its hold.
    expect(dataplaneWildcard(watch({ interestCriteria: { ...criteria, copy: 0, hold: 3 } }), 2, 7)).toMatchObject({ interest: { copy: 0, hold: 3 } });
  });
});

describe('fixed affinity actions for the data plane', () => {
  it('carries a sequence adjustment to the data plane instead of denying it (SMFA-R13)', () => {
    const update = fixedUpdate({ nat: { srcIp: '0.0.0.0', srcPort: 0, dstIp: '10.2.0.11', dstPort: 8080 }, sequenceAdjust });
    expect(unsupportedActions(update, { advertise: false })).toEqual([]);
    const rule = dataplaneFixed(update);
    expect(rule.seqAdjust).toEqual(sequenceAdjust);
    expect(rule.action).toEqual({ type: 'forward', nat: { dstIp: '10.2.0.11', dstPort: 8080 } });
  });

  it('carries FIN/RST interest criteria and the information flag to the data plane (SMFA-R25, R11)', () => {
    const update = fixedUpdate({ interestCriteria: { ip: '10.9.9.9', port: 7801, mask: 5, data: 0, copy: 5, hold: 0 } });
    update.fixed.information = true;
    expect(unsupportedActions(update, { advertise: false })).toEqual([]);
    const rule = dataplaneFixed(update);
    expect(rule.interest).toEqual({ mask: 5, data: 0, copy: 5, hold: 0 });
    expect(rule.statsIp).toBe('10.2.0.11');
  });

  it('denies the hold flag on a fixed affinity: there is no affinity left to wait for', () => {
    const update = fixedUpdate({ interestCriteria: { ip: '10.9.9.9', port: 7801, mask: 1, data: 0, copy: 0, hold: 1 } });
    expect(unsupportedActions(update, { advertise: false })).toEqual([{ segmentType: SegmentTypeCode['interest-criteria'], required: true }]);
  });
});

describe('IPv6 affinities', () => {
  const wildcard6 = (actions: AffinityUpdateWildcard['actions']): AffinityUpdateWildcard => ({
    type: 'affinity-update-wildcard',
    wildcard: { protocol: 6, srcIp: '::', srcMask: '::', dstIp: 'fd00:1::100', dstMask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', srcPort: 0, dstPort: 80, dispatch: 'none', information: false, ttlSeconds: 30 },
    actions,
  });
  const fixed6 = (): AffinityUpdateFixed => ({
    type: 'affinity-update-fixed',
    fixed: { key: { protocol: 6, srcIp: 'fd00:1::2', dstIp: 'fd00:1::100', srcPort: 40000, dstPort: 80 }, dispatch: 'none', information: false, forwardIp: 'fd00:2::11', ttlSeconds: 30 },
    actions: { nat: { srcIp: '::', srcPort: 0, dstIp: 'fd00:2::11', dstPort: 8080 } },
  });

  it('installs interest criteria on IPv6 wildcards; denies what the data plane does on IPv4 only (wildcard NAT, cascading, advertise)', () => {
    const all = { ip: '0.0.0.0', port: 0, mask: 1 << 15, data: 1 << 15, copy: 0, hold: 0 };
    expect(unsupportedActions(wildcard6({ interestCriteria: all }), { advertise: true })).toEqual([]);
    expect(dataplaneWildcard(wildcard6({ interestCriteria: all }), 1, 3)).toMatchObject({ srcIp: '::', dstIp: 'fd00:1::100', interest: { mask: 1 << 15 } });
    const nat = { srcIp: '::', srcPort: 0, dstIp: 'fd00:2::11', dstPort: 0 };
    expect(unsupportedActions(wildcard6({ nat }), { advertise: true })).toEqual([{ segmentType: SegmentTypeCode.nat, required: true }]);
    const watching = { ...all, data: 0, copy: 1 << 15 };
    expect(unsupportedActions(wildcard6({ interestCriteria: watching }), { advertise: true })).toEqual([{ segmentType: SegmentTypeCode['interest-criteria'], required: true }]);
    expect(unsupportedActions(wildcard6({ advertise: { address: 'fd00:1::100' } }), { advertise: true })).toEqual([{ segmentType: SegmentTypeCode.advertise, required: true }]);
  });

  it('translates IPv6 fixed affinities ("::" leaves a field), denies their dispatch and information flag', () => {
    const update = fixed6();
    expect(unsupportedActions(update, { advertise: false })).toEqual([]);
    expect(unsupportedFixed(update)).toBeUndefined();
    expect(dataplaneFixed(update).action).toEqual({ type: 'forward', nat: { dstIp: 'fd00:2::11', dstPort: 8080 } });
    expect(unsupportedFixed({ ...update, fixed: { ...update.fixed, information: true } })).toMatch(/information/);
    expect(unsupportedFixed({ ...update, fixed: { ...update.fixed, dispatch: 'mac-rewrite' } })).toMatch(/dispatch/);
    expect(dataplaneFixed({ ...update, fixed: { ...update.fixed, forwardIp: '::' } }).action).toEqual({ type: 'drop' });
  });
});
