import { describe, expect, it } from 'vitest';
import { FLOW_RECORD_BYTES, FlowBook } from './cluster-flow-book.js';

/** A raw flow record (docs/dataplane.md "Cluster hooks"): an IPv4 key told apart by its client port. */
function record(clientPort: number, fields: { unit?: number; ttlMs?: number; kind?: number } = {}): Buffer {
  const buffer = Buffer.alloc(FLOW_RECORD_BYTES);
  buffer.writeUInt16BE(clientPort, 32);
  buffer.writeUInt8(4, 37);
  buffer.writeUInt32LE(fields.ttlMs ?? 300_000, 88);
  buffer.writeUInt16LE(fields.unit ?? 7, 96);
  buffer.writeUInt8(fields.kind ?? 1, 98);
  return buffer;
}

const ttlOf = (buffer: Buffer) => buffer.readUInt32LE(88);
const UNIT_7 = new Set([7]);

describe('FlowBook', () => {
  it('hands out each record with the time it has left, and nothing whose time is up', () => {
    const book = new FlowBook();
    book.apply([record(1000, { ttlMs: 10_000 }), record(1001, { ttlMs: 2_000 }), record(1002, { unit: 8 })], 0);
    const records = book.of(UNIT_7, 3_000);
    expect(records.map(ttlOf)).toEqual([7_000]);
    expect(book.size).toBe(3);
    book.prune(3_000);
    expect(book.size).toBe(2);
  });

  it('a copy expired here is forgotten only when no later record of its owner extended it', () => {
    const book = new FlowBook();
    book.apply([record(1000, { ttlMs: 6_000 })], 0);
    // the owner's refresh at 4 s: the copy now lasts until 10 s
    book.apply([record(1000, { ttlMs: 6_000, kind: 4 })], 4_000);
    // the data plane's copy (not yet re-imported) expired at 6 s: the book keeps the refreshed record
    book.copyExpired(record(1000, { ttlMs: 0, kind: 3 }), 6_000);
    expect(book.of(UNIT_7, 6_000).map(ttlOf)).toEqual([4_000]);
    // its time is up: the expiry of the copy forgets it
    book.copyExpired(record(1000, { ttlMs: 0, kind: 3 }), 10_000);
    expect(book.size).toBe(0);
  });

  it("an owner's deletion forgets the record at once", () => {
    const book = new FlowBook();
    book.apply([record(1000), record(1000, { kind: 3, ttlMs: 0 })], 0);
    expect(book.size).toBe(0);
  });
});
