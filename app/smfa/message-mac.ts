import { createHmac } from 'node:crypto';
import { HMAC_SHA256_LENGTH, MESSAGE_HEADER_LENGTH, SEGMENT_HEADER_LENGTH } from './wire-constants.js';

/** The security segment is always first, so its MAC sits at a fixed offset: header, segment header, 16 bytes of fields. */
export const MAC_OFFSET = MESSAGE_HEADER_LENGTH + SEGMENT_HEADER_LENGTH + 16;

/** HMAC-SHA-256 over the whole datagram with the MAC field read as zeros. */
export function computeMessageMac(datagram: Buffer, secret: Buffer): Buffer {
  const zeroed = Buffer.from(datagram);
  zeroed.fill(0, MAC_OFFSET, MAC_OFFSET + HMAC_SHA256_LENGTH);
  return createHmac('sha256', secret).update(zeroed).digest();
}
