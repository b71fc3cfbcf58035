/* Cluster timing, from the signed policy's `cluster` thresholds unless overridden. */
import type { Policy } from '../../flash-config/index.js';

export interface ClusterTiming {
  /** Longest keepalive interval; the adaptive count may make it shorter (docs/cluster.md). */
  keepaliveMs: number;
  /** A peer silent this long is dead (member at the master, master at a member). */
  detectionMs: number;
  /** Silence after an offer before a unit becomes master. */
  silenceMs: number;
  rebalanceMs: number;
  /** Most unit moves per rebalance round. */
  maxMovesPerRound: number;
  /** Answer deadline of TLS requests (join, moves, leases). */
  requestTimeoutMs: number;
  /** How long a dead holder's number leases stay reserved. */
  leaseGraceMs: number;
  /** Wait before a refused unit asks again. */
  refusedRetryMs: number;
}

export function clusterTiming(policy: Policy, overrides: Partial<ClusterTiming> = {}): ClusterTiming {
  return {
    keepaliveMs: policy.cluster.keepaliveIntervalMs,
    detectionMs: policy.cluster.memberDeadAfterMs,
    silenceMs: policy.cluster.masterSilenceMs,
    rebalanceMs: policy.cluster.rebalanceIntervalMs,
    maxMovesPerRound: 256,
    requestTimeoutMs: policy.cluster.requestTimeoutMs,
    leaseGraceMs: 120_000,
    refusedRetryMs: 10_000,
    ...overrides,
  };
}
