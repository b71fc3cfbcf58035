/* Operator actions, cluster changes and other events, newest last, for the dashboard timeline and the
 * configuration revision. Kept in memory: the last `capacity` events. */

/** Operator changes, and cluster changes this unit saw (roles, members joining and leaving, a new
 * master: the dashboard's failovers). */
export type EventKind = 'drain' | 'undrain' | 'weight' | 'server-add' | 'server-remove' | 'flow-kill' | 'role' | 'member-joined' | 'member-left' | 'master';

/** Kinds that change the configuration in force (the configuration revision counts them). */
const CONFIGURATION_CHANGES: ReadonlySet<EventKind> = new Set(['drain', 'undrain', 'weight', 'server-add', 'server-remove']);

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
  #revision = 0;

  constructor(capacity = 1000) {
    this.#capacity = capacity;
  }

  get sequence(): number {
    return this.#sequence;
  }

  /** Runtime configuration changes recorded so far. */
  get revision(): number {
    return this.#revision;
  }

  record(kind: EventKind, by: string, detail: ManagementEvent['detail']): ManagementEvent {
    if (CONFIGURATION_CHANGES.has(kind)) this.#revision += 1;
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
