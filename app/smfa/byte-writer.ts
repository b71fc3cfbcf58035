import { EncodeError } from './errors.js';
import { addressToBytes, type AddressFamily } from './ip-address.js';
import type { IpAddress } from './types.js';

function checkUint(value: number, bits: number, field: string): void {
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** bits) {
    throw new EncodeError(field, `${value} is not an unsigned ${bits}-bit integer`);
  }
}

/** Big-endian writer that validates every value against its field width before writing it. */
export class ByteWriter {
  private readonly parts: Buffer[] = [];

  u8(value: number, field: string): this {
    checkUint(value, 8, field);
    this.parts.push(Buffer.of(value));
    return this;
  }

  u16(value: number, field: string): this {
    checkUint(value, 16, field);
    const b = Buffer.alloc(2);
    b.writeUInt16BE(value);
    this.parts.push(b);
    return this;
  }

  u32(value: number, field: string): this {
    checkUint(value, 32, field);
    const b = Buffer.alloc(4);
    b.writeUInt32BE(value);
    this.parts.push(b);
    return this;
  }

  u64(value: bigint, field: string): this {
    if (value < 0n || value >= 1n << 64n) throw new EncodeError(field, `${value} is not an unsigned 64-bit integer`);
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(value);
    this.parts.push(b);
    return this;
  }

  zeros(n: number): this {
    this.parts.push(Buffer.alloc(n));
    return this;
  }

  bytes(value: Uint8Array): this {
    this.parts.push(Buffer.from(value));
    return this;
  }

  address(ip: IpAddress, family: AddressFamily, field: string): this {
    this.parts.push(addressToBytes(ip, family, field));
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}
