import { describe, expect, it } from 'vitest';
import { wildcardMatches } from './address-match.js';
import { FixedOwners } from './fixed-owners.js';
import { comparePrecedence, precedenceOf, type Precedence } from './precedence.js';
import type { AffinityUpdateWildcard, WildcardAffinity } from './types.js';
import { WildcardTable } from './wildcard-table.js';

const base: WildcardAffinity = {
  protocol: 6, srcIp: '0.0.0.0', srcMask: '0.0.0.0', dstIp: '10.0.1.100', dstMask: '255.255.255.255',
  srcPort: 0, dstPort: 80, dispatch: 'none', information: false, ttlSeconds: 10,
};
const key = { protocol: 6, srcIp: '10.0.1.3', dstIp: '10.0.1.100', srcPort: 40000, dstPort: 80 };

function update(wildcard: Partial<WildcardAffinity> = {}, backupPrecedence?: number): AffinityUpdateWildcard {
  const u: AffinityUpdateWildcard = { type: 'affinity-update-wildcard', wildcard: { ...base, ...wildcard }, actions: {} };
  if (backupPrecedence !== undefined) u.backupPrecedence = backupPrecedence;
  return u;
}

function entry(manager: string, u: AffinityUpdateWildcard) {
  return { manager, reply: { address: '127.0.0.1', port: 1 }, update: u, precedence: precedenceOf(u.servicePrecedence, u.backupPrecedence) };
}

describe('wildcard matching (SMFA-R3)', () => {
  it('masks source and destination separately, non-contiguous masks included; port and protocol 0 match any', () => {
    expect(wildcardMatches(base, key)).toBe(true);
    expect(wildcardMatches({ ...base, dstPort: 443 }, key)).toBe(false);
    expect(wildcardMatches({ ...base, protocol: 0, dstPort: 0 }, { ...key, protocol: 17, dstPort: 53 })).toBe(true);
    const odd = { ...base, srcIp: '0.0.0.1', srcMask: '0.0.0.1' };
    expect(wildcardMatches(odd, key)).toBe(true);
    expect(wildcardMatches(odd, { ...key, srcIp: '10.0.1.2' })).toBe(false);
  });

  it('matches IPv6 keys against IPv6 rules only, masks over all 128 bits', () => {
    const v6 = { ...base, srcIp: '::', srcMask: '::', dstIp: 'fd00:1::100', dstMask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' };
    const key6 = { ...key, srcIp: 'fd00:1::2', dstIp: 'fd00:1::100' };
    expect(wildcardMatches(v6, key6)).toBe(true);
    expect(wildcardMatches(v6, { ...key6, dstIp: 'fd00:1::101' })).toBe(false);
    expect(wildcardMatches(base, key6)).toBe(false);
    expect(wildcardMatches(v6, key)).toBe(false);
    // Odd interface identifiers only (a non-contiguous mask in the last byte).
    const odd6 = { ...v6, srcIp: '::1', srcMask: '::1' };
    expect(wildcardMatches(odd6, { ...key6, srcIp: 'fd00:1::3' })).toBe(true);
    expect(wildcardMatches(odd6, key6)).toBe(false);
  });
});

describe('precedence (SMFA-R18)', () => {
  it('orders by service precedence under its search order, ties to the lowest backup precedence', () => {
    const first = (a: Precedence, b: Precedence) => comparePrecedence(a, b) < 0;
    const lower10 = precedenceOf({ searchOrder: 'lower-first', value: 10 }, 0);
    const lower20 = precedenceOf({ searchOrder: 'lower-first', value: 20 }, 0);
    const backup = precedenceOf({ searchOrder: 'lower-first', value: 10 }, 1);
    const higher = (v: number) => precedenceOf({ searchOrder: 'higher-first', value: v }, 0);
    expect(first(lower10, backup)).toBe(true);
    expect(first(backup, lower20)).toBe(true);
    expect(first(higher(20), higher(10))).toBe(true);
    expect(first(lower20, precedenceOf(undefined, undefined))).toBe(true);
    // Without service precedence, the backup precedence alone decides.
    expect(first(precedenceOf(undefined, 0), precedenceOf(undefined, 1))).toBe(true);
  });
});

describe('WildcardTable (SMFA-R7, R17, R19)', () => {
  it('refreshes an identical wildcard, deletes on TTL 0, expires at arrival + TTL', () => {
    const table = new WildcardTable();
    expect(table.apply(entry('sm1', update()), 0)).toBe('added');
    expect(table.apply(entry('sm1', update({ ttlSeconds: 5 })), 1000)).toBe('refreshed');
    expect(table.size).toBe(1);
    expect(table.expire(5999)).toHaveLength(0);
    expect(table.expire(6000)).toHaveLength(1);
    table.apply(entry('sm1', update()), 0);
    expect(table.apply(entry('sm1', update({ ttlSeconds: 0 })), 0)).toBe('deleted');
    expect(table.apply(entry('sm1', update({ ttlSeconds: 0 })), 0)).toBe('absent');
  });

  it('orders the primary first until its wildcard goes, then the backup; ids name entries for the data plane', () => {
    const table = new WildcardTable();
    table.apply(entry('backup', update({}, 1)), 0);
    table.apply(entry('primary', update({ ttlSeconds: 3 }, 0)), 0);
    expect(table.ordered().map((e) => e.manager)).toEqual(['primary', 'backup']);
    const [primaryId, backupId] = table.ordered().map((e) => e.id);
    expect(primaryId).not.toBe(backupId);
    expect(table.byId(primaryId!)?.manager).toBe('primary');
    table.apply(entry('primary', update({ ttlSeconds: 3 }, 0)), 1000);
    expect(table.ordered()[0]!.id).toBe(primaryId);
    table.expire(4000);
    expect(table.ordered().map((e) => e.manager)).toEqual(['backup']);
    expect(table.byId(primaryId!)).toBeUndefined();
    expect(table.byId(backupId!)?.manager).toBe('backup');
    expect(table.coveredBy('primary', key)).toBeUndefined();
    expect(table.coveredBy('backup', key)).toBeDefined();
  });

  it('keeps a backup out of the active set while its primary lives; other services and filters stay in', () => {
    const table = new WildcardTable();
    const service = (value: number, backup: number, wildcard: Partial<WildcardAffinity> = {}) => {
      const u = update(wildcard, backup);
      u.servicePrecedence = { searchOrder: 'lower-first', value };
      return u;
    };
    table.apply(entry('backup', service(10, 1)), 0);
    table.apply(entry('primary', service(10, 0, { ttlSeconds: 3 })), 0);
    table.apply(entry('balancer', service(100, 0)), 0);
    table.apply(entry('backup', service(10, 1, { dstPort: 443 })), 0);
    expect(table.active().map((e) => `${e.manager}:${e.update.wildcard.dstPort}`)).toEqual(['primary:80', 'backup:443', 'balancer:80']);
    table.expire(4000);
    expect(table.active().map((e) => `${e.manager}:${e.update.wildcard.dstPort}`)).toEqual(['backup:80', 'backup:443', 'balancer:80']);
  });
});

describe('FixedOwners (SMFA-R8, R19)', () => {
  const primary = precedenceOf(undefined, 0);
  const backup = precedenceOf(undefined, 1);
  it("lets a worse manager take a flow only after the owner's affinity expired; TTL 0 of an absent one is a no-op", () => {
    const owners = new FixedOwners();
    expect(owners.decide('a', key, 10, primary, 0)).toBe('install');
    expect(owners.decide('b', key, 10, backup, 1000)).toBe('shadowed');
    expect(owners.decide('b', key, 10, backup, 10_000)).toBe('install');
    expect(owners.decide('b', key, 0, backup, 10_001)).toBe('delete');
    expect(owners.decide('b', key, 0, backup, 10_002)).toBe('absent');
  });
});
