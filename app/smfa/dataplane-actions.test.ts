import { describe, expect, it } from 'vitest';
import { dataplaneFixed, dataplaneWildcard, unsupportedActions } from './dataplane-actions.js';
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
