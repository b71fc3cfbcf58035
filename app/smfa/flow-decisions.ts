/* A manager's own copy of its decisions (SMFA-R22, R23): kept longer than the agents' TTL so a
 * flow an agent forgot, or another agent sees (need to know, SMFA-R20), gets the same server; after
 * a FIN or RST only a short "sticky" time so the last ACK or a browser's RST still reaches it. */
import { keyText } from './ip-packet.js';
import type { Server } from './server-choice.js';
import type { AffinityKey } from './types.js';

/** An agent that got one direction's fixed affinity (need to know): a change must reach it. */
export interface Holder {
  address: string;
  port: number;
  toServer: boolean;
}

interface Decision {
  clientKey: AffinityKey;
  server: Server;
  expiresAt: number;
  closing: boolean;
  holders: Map<string, Holder>;
}

export class FlowDecisions {
  readonly #decisions = new Map<string, Decision>();

  constructor(private readonly keepMs: number, private readonly stickyMs: number) {}

  get(clientKey: AffinityKey): Server | undefined {
    return this.#decisions.get(keyText(clientKey))?.server;
  }

  record(clientKey: AffinityKey, server: Server, now: number): void {
    this.#decisions.set(keyText(clientKey), { clientKey, server, expiresAt: now + this.keepMs, closing: false, holders: new Map() });
  }

  /** Notes that an agent got the fixed affinity of one direction of the flow. */
  addHolder(clientKey: AffinityKey, holder: Holder): void {
    this.#decisions.get(keyText(clientKey))?.holders.set(`${holder.address}:${holder.port}:${holder.toServer}`, holder);
  }

  /** The decided flows of a server, with the agents holding their affinities. */
  flowsOf(server: Server): { clientKey: AffinityKey; holders: Holder[] }[] {
    return [...this.#decisions.values()]
      .filter((d) => d.server.ip === server.ip && d.server.port === server.port)
      .map((d) => ({ clientKey: d.clientKey, holders: [...d.holders.values()] }));
  }

  /** The flow goes to another server from now on; the agents holding the old affinities are the caller's to update. */
  change(clientKey: AffinityKey, server: Server): void {
    const decision = this.#decisions.get(keyText(clientKey));
    if (decision) decision.server = server;
  }

  /** A packet of the flow was seen: keep the decision (a closing flow keeps only its sticky time). */
  touch(clientKey: AffinityKey, now: number): void {
    const decision = this.#decisions.get(keyText(clientKey));
    if (decision && !decision.closing) decision.expiresAt = now + this.keepMs;
  }

  /** Returns whether the decision was open until now. */
  closing(clientKey: AffinityKey, now: number): boolean {
    const decision = this.#decisions.get(keyText(clientKey));
    if (!decision || decision.closing) return false;
    decision.closing = true;
    decision.expiresAt = Math.min(decision.expiresAt, now + this.stickyMs);
    return true;
  }

  expire(now: number): void {
    for (const [id, decision] of this.#decisions) if (decision.expiresAt <= now) this.#decisions.delete(id);
  }

  get size(): number {
    return this.#decisions.size;
  }
}
