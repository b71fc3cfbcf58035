/* What the management API needs from a clustered unit: its membership as the cluster control plane
 * sees it, the work-unit map, which connections this unit owns, and how to reach its peers'
 * management APIs. app/control/clustered.ts provides it from the cluster Member. */

export interface ClusterPeerAddress {
  id: string;
  /** The member's address on the cluster network; its management API listens there too. */
  address: string;
}

export type ClusterEventKind = 'role' | 'member-joined' | 'member-left' | 'master';

export interface ClusterSource {
  unitId: string;
  address: string;
  /** This unit's cluster role: discovering, offering, joining, member, master, refused, stopped. */
  role(): string;
  masterId(): string | undefined;
  /** Every member this unit knows of, itself included. */
  members(): ClusterPeerAddress[];
  /** When this unit last heard each member's (or the master's) keepalive, ms since the epoch. */
  lastHeard(): ReadonlyMap<string, number>;
  /** The owner of every work unit as this unit knows it (null: nobody yet). */
  owners(): (string | null)[];
  /** Whether this unit owns the work unit of a client's connection (so it speaks for it). */
  ownsClient(ip: string, port: number): boolean;
  /** Membership and role changes as they happen: the dashboard timeline's failovers. */
  onEvent(listener: (kind: ClusterEventKind, detail: Record<string, string | number>) => void): void;
  /** Port of every member's management API. */
  managementPort: number;
}
