/* Operator actions and other changes, newest last, for the dashboard timeline and the
 * configuration revision. Kept in memory: the last `capacity` events. */

export type EventKind = 'drain' | 'undrain' | 'weight' | 'flow-kill';

export interface ManagementEvent {
  sequence: number;
  time: string;
  kind: EventKind;
  /** The operator (certificate name) who asked for it. */
  by: string;
  detail: Record<string, string | number>;
}

export class EventLog {
  readonly #capacity: number;
  readonly #events: ManagementEvent[] = [];
  #sequence = 0;

  constructor(capacity = 1000) {
    this.#capacity = capacity;
  }

  get sequence(): number {
    return this.#sequence;
  }

  record(kind: EventKind, by: string, detail: ManagementEvent['detail']): ManagementEvent {
    const event = { sequence: ++this.#sequence, time: new Date().toISOString(), kind, by, detail };
    this.#events.push(event);
    if (this.#events.length > this.#capacity) this.#events.shift();
    return event;
  }

  /** Events after `sequence` (all kept ones by default). */
  since(sequence = 0): ManagementEvent[] {
    return this.#events.filter((event) => event.sequence > sequence);
  }
}
