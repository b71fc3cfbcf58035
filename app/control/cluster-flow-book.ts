/* The flow records a member knows (its own connections' and its peers' replicated ones), latest
 * record per connection direction: the source of the bulk resync a joining member gets.
 * Records are the data plane's raw `struct ep_flow_record` (docs/dataplane.md "Cluster hooks"):
 * the 40-byte flow key first, the work unit at 96 (u16, host order), the event kind at 98. */
import { decodeFlowKey } from '../../firmware/addressing.js';
import type { FlowKey } from '../../firmware/dataplane.js';

export const FLOW_RECORD_BYTES = 136;
const KEY_BYTES = 40;
const FAMILY_OFFSET = 37;
const UNIT_OFFSET = 96;
const KIND_OFFSET = 98;
const KIND_DELETED = 3;

export function splitRecords(batch: Buffer): Buffer[] {
  if (batch.length % FLOW_RECORD_BYTES !== 0) throw new Error(`flow batch of ${batch.length} bytes is not a whole number of ${FLOW_RECORD_BYTES}-byte records`);
  return Array.from({ length: batch.length / FLOW_RECORD_BYTES }, (_, i) => batch.subarray(i * FLOW_RECORD_BYTES, (i + 1) * FLOW_RECORD_BYTES));
}

export function isDeletion(record: Buffer): boolean {
  return record.readUInt8(KIND_OFFSET) === KIND_DELETED;
}

export function recordUnit(record: Buffer): number {
  return record.readUInt16LE(UNIT_OFFSET);
}

/** The connection direction a record is about, for forgetting it; undefined for a key of no family. */
export function recordFlowKey(record: Buffer): FlowKey | undefined {
  const family = record.readUInt8(FAMILY_OFFSET);
  return family === 4 || family === 6 ? decodeFlowKey(record.subarray(0, KEY_BYTES)) : undefined;
}

export class FlowBook {
  private readonly records = new Map<string, Buffer>();

  get size(): number {
    return this.records.size;
  }

  /** Applies records in order: a deletion forgets the direction, anything else replaces it. */
  apply(records: readonly Buffer[]): void {
    for (const record of records) {
      const key = record.subarray(0, KEY_BYTES).toString('latin1');
      if (isDeletion(record)) this.records.delete(key);
      else this.records.set(key, Buffer.from(record));
    }
  }

  /** Every known record of the given work units. */
  of(units: ReadonlySet<number>): Buffer[] {
    return [...this.records.values()].filter((record) => units.has(recordUnit(record)));
  }
}
