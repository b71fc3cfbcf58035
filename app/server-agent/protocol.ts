/* The server agent protocol (docs/services.md): newline-delimited JSON over TCP. Each line the agent
 * sends is an envelope {payload, mac}: `payload` is the JSON text of {v, agent, ts, nonce, message}
 * and `mac` the hex HMAC-SHA-256 of exactly those bytes under the agent's key, so nobody has to
 * agree on a canonical JSON form. The appliance answers every line with one reply line. */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';

export const PROTOCOL_VERSION = 1;
/** Longer lines are not messages; the appliance closes the connection. */
export const MAX_LINE_BYTES = 16 * 1024;
const MIN_KEY_BYTES = 32;

const ipv4 = z.ipv4();
const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/);
const port = z.int().min(0).max(65535);

const serverRef = {
  service: name,
  address: ipv4,
  port,
};

export const messageSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('register'),
    ...serverRef,
    /** Connections the server is built for; utilisation = connections / capacity. */
    capacity: z.int().min(1).max(10_000_000),
    checkAddress: ipv4.optional(),
  }),
  z.strictObject({
    type: z.literal('report'),
    ...serverRef,
    connections: z.int().min(0),
    cpu: z.number().min(0).max(64),
  }),
  z.strictObject({
    type: z.literal('deregister'),
    ...serverRef,
    deadlineMs: z.int().min(0).max(3_600_000),
  }),
  z.strictObject({
    type: z.literal('flow'),
    ...serverRef,
    flow: z.strictObject({
      protocol: z.enum(['tcp', 'udp']),
      srcIp: ipv4,
      srcPort: z.int().min(1).max(65535),
      /** Needed only when the service listens on every port. */
      dstPort: port.default(0),
      ttlSeconds: z.int().min(1).max(86_400),
    }),
  }),
]);

export type AgentMessage = z.input<typeof messageSchema>;
export type ParsedMessage = z.output<typeof messageSchema>;

export const envelopeSchema = z.strictObject({
  payload: z.string().min(1),
  mac: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits'),
});

/** The authenticated header; `message` is checked against messageSchema after the MAC. */
export const payloadSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  agent: name,
  ts: z.int().min(0),
  nonce: z.string().regex(/^[0-9a-f]{32}$/, 'must be 32 lowercase hex digits'),
  message: z.unknown(),
});

export type Reply =
  | { ok: true; type: ParsedMessage['type']; deadlineMs?: number }
  | { ok: false; reason: string; detail: string };

export function mac(key: Buffer, payload: string): string {
  return createHmac('sha256', key).update(payload, 'utf8').digest('hex');
}

export function macMatches(key: Buffer, payload: string, given: string): boolean {
  return timingSafeEqual(Buffer.from(mac(key, payload), 'hex'), Buffer.from(given, 'hex'));
}

/** One signed line (with its newline) for `message` from `agent` at `now`. */
export function seal(agent: string, key: Buffer, message: AgentMessage, now = Date.now()): string {
  const payload = JSON.stringify({ v: PROTOCOL_VERSION, agent, ts: now, nonce: randomBytes(16).toString('hex'), message });
  return `${JSON.stringify({ payload, mac: mac(key, payload) })}\n`;
}

/** A key file holds the key as hex (64+ digits) or as raw bytes (32+). */
export function readKeyFile(file: string): Buffer {
  const raw = readFileSync(file);
  const text = raw.toString('utf8').trim();
  const key = /^([0-9a-fA-F]{2})+$/.test(text) ? Buffer.from(text, 'hex') : raw;
  if (key.length < MIN_KEY_BYTES) throw new Error(`key file ${file} holds ${key.length} bytes, at least ${MIN_KEY_BYTES} are needed`);
  return key;
}
