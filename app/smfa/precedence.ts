/* Ordering of affinities from several managers (SMFA-R18, R19): best service precedence under its
 * search order, ties to the lowest backup precedence. */
import type { ServicePrecedence } from './types.js';

/** Without a service precedence segment an affinity ranks after every one that has one. */
export const DEFAULT_SERVICE_PRECEDENCE: ServicePrecedence = { searchOrder: 'lower-first', value: 0xffffffff };
const U32 = 0x1_0000_0000;

export interface Precedence {
  service: ServicePrecedence;
  backup: number;
}

export function precedenceOf(service: ServicePrecedence | undefined, backup: number | undefined): Precedence {
  return { service: service ?? DEFAULT_SERVICE_PRECEDENCE, backup: backup ?? 0 };
}

/** Service precedence as "smaller is better", comparable across search orders (higher-first values
 * are mirrored); equal for a primary and its backups. */
export function serviceRank(p: Precedence): number {
  return p.service.searchOrder === 'lower-first' ? p.service.value : U32 - 1 - p.service.value;
}

/** Negative when `a` goes first. */
export function comparePrecedence(a: Precedence, b: Precedence): number {
  return serviceRank(a) - serviceRank(b) || a.backup - b.backup;
}

export function isBetterOrEqual(a: Precedence, b: Precedence): boolean {
  return comparePrecedence(a, b) <= 0;
}
