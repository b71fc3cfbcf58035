import { fieldFailure, type DecodeFailure } from './errors.js';
import { addressFromBytes, addressLength, type AddressFamily } from './ip-address.js';
import type { IpAddress } from './types.js';

/** Bounds-checked big-endian reader over one segment body; every failure names the field. */
export class ByteReader {
  private pos = 0;

  constructor(
    private readonly body: Buffer,
    /** Offset of body[0] within the datagram, so errors point into the whole message. */
    private readonly baseOffset: number,
  ) {}

  get remaining(): number {
    return this.body.length - this.pos;
  }

  get offset(): number {
    return this.baseOffset + this.pos;
  }

  private take(n: number, field: string): Buffer {
    if (n > this.remaining) {
      throw fieldFailure(field, `needs ${n} bytes but the segment has ${this.remaining} left`, this.offset);
    }
    const slice = this.body.subarray(this.pos, this.pos + n);
    this.pos += n;
    return slice;
  }

  u8(field: string): number {
    return this.take(1, field).readUInt8(0);
  }

  u16(field: string): number {
    return this.take(2, field).readUInt16BE(0);
  }

  u32(field: string): number {
    return this.take(4, field).readUInt32BE(0);
  }

  u64(field: string): bigint {
    return this.take(8, field).readBigUInt64BE(0);
  }

  skip(n: number, field: string): void {
    this.take(n, field);
  }

  bytes(n: number, field: string): Buffer {
    return Buffer.from(this.take(n, field));
  }

  rest(): Buffer {
    return this.bytes(this.remaining, 'rest');
  }

  family(field: string): AddressFamily {
    const at = this.offset;
    const value = this.u8(field);
    if (value !== 4 && value !== 6) throw fieldFailure(field, `address family ${value} is neither 4 nor 6`, at);
    return value;
  }

  address(family: AddressFamily, field: string): IpAddress {
    return addressFromBytes(this.take(addressLength(family), field));
  }

  /** For fixed-size segments: trailing bytes mean the sender and receiver disagree on the layout. */
  end(segmentName: string): void {
    if (this.remaining !== 0) {
      throw fieldFailure(segmentName, `${this.remaining} unexpected trailing bytes`, this.offset);
    }
  }

  failure(field: string, why: string, at = this.offset): DecodeFailure {
    return fieldFailure(field, why, at);
  }
}
