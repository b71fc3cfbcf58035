/* The byte streams of the failover tests: byte i of a direction is a fixed function of i, so a
 * receiver checks every byte (nothing lost, repeated or reordered) without storing the stream. */
export const CHUNK = 256;
export const TO_CLIENT = 251;
export const TO_SERVER = 241;

export function pattern(modulus: number, offset: number, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i += 1) bytes[i] = (offset + i) % modulus;
  return bytes;
}

export function checkPattern(modulus: number, offset: number, data: Buffer): boolean {
  for (let i = 0; i < data.length; i += 1) if (data[i] !== (offset + i) % modulus) return false;
  return true;
}
