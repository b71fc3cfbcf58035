/* Who may do what on the management API. The role travels inside the operator's certificate as a
 * SAN URI `urn:edgeplane:operator:<name>:role:<role>`, signed by the cluster CA, so every unit can
 * decide on its own without a user database. */

export const ROLES = ['read-only', 'operator'] as const;
export type Role = (typeof ROLES)[number];

const OPERATOR_URI = /^urn:edgeplane:operator:([A-Za-z0-9._-]{1,64}):role:([a-z-]+)$/;
/** What a route needs: an operator role, or `peer`: the unit certificate of a cluster member
 * (cluster-internal routes under /api/peer/, which operators cannot call). */
export type Access = Role | 'peer';

export const OPERATOR_NAME = /^[A-Za-z0-9._-]{1,64}$/;

export interface Operator {
  name: string;
  role: Role;
}

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

export function operatorUri(operator: Operator): string {
  if (!OPERATOR_NAME.test(operator.name)) throw new Error(`operator name "${operator.name}" must be 1-64 of A-Za-z0-9._-`);
  return `urn:edgeplane:operator:${operator.name}:role:${operator.role}`;
}

/** The operator a SAN URI names, or undefined when it is not an operator URI with a known role. */
export function parseOperatorUri(uri: string): Operator | undefined {
  const match = OPERATOR_URI.exec(uri);
  if (!match || !isRole(match[2]!)) return undefined;
  return { name: match[1]!, role: match[2] };
}

/** An operator may do everything read-only may do, and change things. */
export function roleAllows(held: Role, needed: Role): boolean {
  return held === 'operator' || needed === 'read-only';
}
