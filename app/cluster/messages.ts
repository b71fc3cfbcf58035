/* Cluster datagram types and their JSON bodies (docs/cluster.md "Datagram types"). The envelope
 * (envelope.ts) carries them; this module maps type numbers to names and validates every body. */
import { z } from 'zod';

const count = z.int().min(0).max(1_000_000);
const port = z.int().min(1).max(65_535);
const unitId = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/);
const address = z.string().min(2).max(45);

export const leaseSchema = z.strictObject({
  space: z.string().min(1).max(32),
  start: z.int().min(0),
  size: z.int().min(1),
  holder: unitId,
  /** Epoch ms after which a dead holder's lease returns to the pool; null while the holder lives. */
  graceUntil: z.number().nullable(),
});
export type Lease = z.infer<typeof leaseSchema>;

const masterClaim = z.strictObject({ joinPort: port, memberCount: count, configVersion: count });

export const bodySchemas = {
  discover: z.strictObject({ configVersion: count }),
  'master-announce': masterClaim,
  offer: z.strictObject({ memberCount: count, configVersion: count }),
  'other-master-exists': masterClaim,
  'master-keepalive': z.strictObject({
    joinPort: port,
    configVersion: count,
    members: z.array(z.strictObject({ id: unitId, address, intervals: z.int().min(2).max(20) })).max(1024),
    /** base64 of 1024 big-endian u16: index into members, 0xffff = unassigned. */
    table: z.string().length(2732),
    leases: z.array(leaseSchema).max(4096),
  }),
  'client-keepalive': z.strictObject({}),
  'exit-cluster': z.strictObject({ target: unitId, reason: z.string().max(200) }),
} as const;

export type MessageName = keyof typeof bodySchemas;
export type MessageBody<N extends MessageName> = z.infer<(typeof bodySchemas)[N]>;
export type ClusterMessage = { [N in MessageName]: { name: N; body: MessageBody<N> } }[MessageName];

export const MESSAGE_TYPES: Record<MessageName, number> = {
  discover: 1,
  'master-announce': 2,
  offer: 3,
  'other-master-exists': 4,
  'master-keepalive': 5,
  'client-keepalive': 6,
  'exit-cluster': 7,
};

/** Messages only cluster members (holders of the cluster key) may send. */
export const AUTHENTICATED: ReadonlySet<MessageName> = new Set(['master-keepalive', 'client-keepalive', 'exit-cluster']);

const NAMES = new Map(Object.entries(MESSAGE_TYPES).map(([name, type]) => [type, name as MessageName]));

export class BodyError extends Error {
  override readonly name = 'BodyError';
  constructor(readonly reason: string) {
    super(reason);
  }
}

export function messageName(type: number): MessageName {
  const name = NAMES.get(type);
  if (name === undefined) throw new BodyError(`unknown message type ${type}`);
  return name;
}

export function encodeBody(message: ClusterMessage): Buffer {
  return Buffer.from(JSON.stringify(bodySchemas[message.name].parse(message.body)), 'utf8');
}

export function decodeBody(name: MessageName, bytes: Buffer): ClusterMessage {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw new BodyError(`${name} body is not UTF-8 JSON (${(error as Error).message})`);
  }
  const parsed = bodySchemas[name].safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BodyError(`${name} body: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}`);
  }
  return { name, body: parsed.data } as ClusterMessage;
}
