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

/** Smaller is better; comparable across search orders (higher-first values are mirrored). */
export function rank(p: Precedence): number {
  const service = p.service.searchOrder === 'lower-first' ? p.service.value : U32 - 1 - p.service.value;
  return service * U32 + p.backup;
}

export function isBetterOrEqual(a: Precedence, b: Precedence): boolean {
  return rank(a) <= rank(b);
}
