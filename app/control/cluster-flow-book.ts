/* The flow records a member knows (its own connections' and its peers' replicated ones), latest
 * record per connection direction: the source of the bulk resync a joining member gets.
 * Records are the data plane's raw `struct ep_flow_record` (docs/dataplane.md "Cluster hooks"):
 * the 40-byte flow key first, the time left at 88 (u32 ms, host order), the work unit at 96 (u16),
 * the event kind at 98. A record is kept as long as its time left says: the owner sends it again
 * before then while the connection lives (cluster.md "Flow refresh"), and hands out what is left. */
import { decodeFlowKey } from '../../firmware/addressing.js';
import type { FlowKey } from '../../firmware/dataplane.js';

export const FLOW_RECORD_BYTES = 136;
const KEY_BYTES = 40;
const FAMILY_OFFSET = 37;
const TTL_OFFSET = 88;
const UNIT_OFFSET = 96;
const KIND_OFFSET = 98;
const KIND_DELETED = 3;
const KIND_REFRESHED = 4;

export function splitRecords(batch: Buffer): Buffer[] {
  if (batch.length % FLOW_RECORD_BYTES !== 0) throw new Error(`flow batch of ${batch.length} bytes is not a whole number of ${FLOW_RECORD_BYTES}-byte records`);
  return Array.from({ length: batch.length / FLOW_RECORD_BYTES }, (_, i) => batch.subarray(i * FLOW_RECORD_BYTES, (i + 1) * FLOW_RECORD_BYTES));
}

export function isDeletion(record: Buffer): boolean {
  return record.readUInt8(KIND_OFFSET) === KIND_DELETED;
}

/** The record of a live connection sent again only for its time left (cluster.md "Flow refresh"). */
export function isRefresh(record: Buffer): boolean {
  return record.readUInt8(KIND_OFFSET) === KIND_REFRESHED;
}

export function recordUnit(record: Buffer): number {
  return record.readUInt16LE(UNIT_OFFSET);
}

/** The connection direction a record is about, for forgetting it; undefined for a key of no family. */
export function recordFlowKey(record: Buffer): FlowKey | undefined {
  const family = record.readUInt8(FAMILY_OFFSET);
  return family === 4 || family === 6 ? decodeFlowKey(record.subarray(0, KEY_BYTES)) : undefined;
}

interface Entry {
  record: Buffer;
  /** When the copies made from this record expire (Date.now() time). */
  expiresAt: number;
}

export class FlowBook {
  private readonly entries = new Map<string, Entry>();

  get size(): number {
    return this.entries.size;
  }

  /** Applies records in order: a deletion forgets the direction, anything else replaces it. */
  apply(records: readonly Buffer[], now = Date.now()): void {
    for (const record of records) {
      const key = bookKey(record);
      if (isDeletion(record)) this.entries.delete(key);
      else this.entries.set(key, { record: Buffer.from(record), expiresAt: now + record.readUInt32LE(TTL_OFFSET) });
    }
  }

  /** A copy here expired (the deletion record of a connection another member owns): forgotten only
   * when its time is up here too - a later record from its owner may still be on its way into the
   * data plane, and the book is what a resync or a takeover goes by. */
  copyExpired(record: Buffer, now = Date.now()): void {
    const key = bookKey(record);
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt <= now) this.entries.delete(key);
  }

  /** Forgets the records whose time is up (their owner stopped sending them without a deletion:
   * it died, or the deletion was lost). */
  prune(now = Date.now()): void {
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
  }

  /** Every live record of the given work units, each with the time it has left now. */
  of(units: ReadonlySet<number>, now = Date.now()): Buffer[] {
    const records: Buffer[] = [];
    for (const { record, expiresAt } of this.entries.values()) {
      if (expiresAt <= now || !units.has(recordUnit(record))) continue;
      const copy = Buffer.from(record);
      copy.writeUInt32LE(expiresAt - now, TTL_OFFSET);
      records.push(copy);
    }
    return records;
  }
}

function bookKey(record: Buffer): string {
  return record.subarray(0, KEY_BYTES).toString('latin1');
}
