/* The least-load weight function (SR-R3): a server's share of new connections from what its agent
 * reports (connections, CPU) and the response metric the data plane measures (client SYN to
 * server SYN-ACK). docs/services.md explains the constants. */

/** A fully used server (utilisation 1) gets a tenth of the share of an idle one of the same size. */
const LOAD_PENALTY = 9;
/** A mean handshake time of this many ms halves a server's share. */
const RESPONSE_REFERENCE_MS = 10;
/** Weights are scaled so the best server gets this; coarse steps keep tiny jitters from rebuilding tables. */
export const LEAST_LOAD_TOP_WEIGHT = 100;

export interface LoadInput {
  /** Capacity (agent-registered) or configured weight (static): the server's size. */
  base: number;
  /** max(connections / capacity, cpu); 0 when nothing was reported. */
  utilisation: number;
  /** Mean handshake time in the last window, ms; 0 when unknown. */
  responseMs: number;
}

export function utilisation(report: { connections: number; cpu: number } | undefined, capacity: number | undefined): number {
  if (!report) return 0;
  const connectionShare = capacity ? report.connections / capacity : 0;
  return Math.max(connectionShare, report.cpu);
}

/** Weights 1..LEAST_LOAD_TOP_WEIGHT in input order; a server with base 0 gets 0. */
export function leastLoadWeights(inputs: readonly LoadInput[]): number[] {
  const scores = inputs.map((input) => input.base / ((1 + LOAD_PENALTY * input.utilisation) * (1 + input.responseMs / RESPONSE_REFERENCE_MS)));
  const best = Math.max(0, ...scores);
  if (best === 0) return scores.map(() => 0);
  return scores.map((score, i) => (inputs[i]!.base === 0 ? 0 : Math.max(1, Math.round((LEAST_LOAD_TOP_WEIGHT * score) / best))));
}
