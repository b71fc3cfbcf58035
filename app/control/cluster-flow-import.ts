/* Peers' flow records into the data plane, in the order they came: live records are imported,
 * deletions forget the connection. The data plane's command ring is small (workers take a few
 * commands per loop), so what does not fit now waits here and is pumped again later. */
import type { Dataplane } from '../../firmware/dataplane.js';
import { isDeletion, recordFlowKey } from './cluster-flow-book.js';

const RUN = 256;

export class FlowImporter {
  private queue: Buffer[] = [];
  private head = 0;
  imported = 0;
  forgotten = 0;

  constructor(private readonly dp: Pick<Dataplane, 'importFlows' | 'forgetFlow'>) {}

  get waiting(): number {
    return this.queue.length - this.head;
  }

  /** Queues records and pumps; returns whether everything went. */
  add(records: readonly Buffer[]): boolean {
    this.queue.push(...records);
    return this.pump();
  }

  /** Hands as much as the data plane takes now; returns whether everything went. */
  pump(): boolean {
    while (this.head < this.queue.length) {
      const first = this.queue[this.head] as Buffer;
      if (isDeletion(first)) {
        const key = recordFlowKey(first);
        if (key) {
          try {
            this.dp.forgetFlow(key);
          } catch {
            break; // the command ring is full: try again on the next pump
          }
          this.forgotten += 1;
        }
        this.head += 1;
        continue;
      }
      let end = this.head;
      while (end < this.queue.length && end - this.head < RUN && !isDeletion(this.queue[end] as Buffer)) end += 1;
      const run = end - this.head;
      const queued = this.dp.importFlows(Buffer.concat(this.queue.slice(this.head, end)));
      this.head += queued;
      this.imported += queued;
      if (queued < run) break;
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    }
    return this.waiting === 0;
  }
}
