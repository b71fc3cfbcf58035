/* Requests on the TLS control channel and their validated parameters and results
 * (docs/cluster.md "TLS control channel"). */
import { z } from 'zod';
import { leaseSchema } from './messages.js';

const unit = z.int().min(0).max(1023);
/** A policy file's exact bytes and detached signature, base64 (flash-config SignedPolicy). */
export const signedPolicyWire = z.strictObject({ bytes: z.base64().max(700_000), signature: z.base64().max(1024) });
export type SignedPolicyWire = z.infer<typeof signedPolicyWire>;
const units = z.array(unit).max(1024);

export const rpc = {
  join: {
    params: z.strictObject({
      unitId: z.string(),
      address: z.string(),
      configVersion: z.int().min(0),
      /** The joiner's signed policy: the master adopts it when its version is higher. */
      policy: signedPolicyWire,
      ownedUnits: units,
      leases: z.array(leaseSchema).max(4096),
      /** The joiner's data-port MACs by port id: where a master in forwarding delivery passes the
       * frames of the joiner's work units on to (cluster.md CL-R2). */
      dataMacs: z.array(z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i)).max(8).default([]),
    }),
    /** `policy`: the cluster's signed policy after the join (the joiner adopts it when higher). */
    result: z.strictObject({ clusterKey: z.base64(), masterId: z.string(), release: units, refusedLeases: z.array(leaseSchema), policy: signedPolicyWire }),
  },
  /** member -> master: the cluster's signed policy (a keepalive announced a higher version). */
  policy: { params: z.strictObject({}), result: signedPolicyWire },
  'need-units': { params: z.strictObject({ units }), result: z.null() },
  load: {
    params: z.strictObject({ units: z.array(z.strictObject({ unit, packets: z.number().min(0), flows: z.number().min(0) })).max(1024) }),
    result: z.null(),
  },
  lease: { params: z.strictObject({ space: z.string().max(32) }), result: leaseSchema },
  'release-lease': { params: z.strictObject({ space: z.string().max(32), start: z.int().min(0) }), result: z.null() },
  'hold-units': { params: z.strictObject({ units }), result: z.strictObject({ units }) },
  /** `next`: the member the units go to, which must hold their flow state before the release is acknowledged. */
  'release-units': { params: z.strictObject({ units, next: z.strictObject({ id: z.string().max(64), address: z.string().max(64) }).optional() }), result: z.strictObject({ units }) },
  'assign-units': { params: z.strictObject({ units }), result: z.strictObject({ units }) },
  'exit-cluster': { params: z.strictObject({ reason: z.string().max(500) }), result: z.null() },
  compare: {
    params: z.strictObject({ memberCount: z.int().min(0), address: z.string() }),
    result: z.strictObject({ memberCount: z.int().min(0), address: z.string() }),
  },
} as const;

export type Method = keyof typeof rpc;
export type Params<M extends Method> = z.infer<(typeof rpc)[M]['params']>;
export type Result<M extends Method> = z.infer<(typeof rpc)[M]['result']>;

export function parseParams<M extends Method>(method: M, params: unknown): Params<M> {
  const parsed = rpc[method].params.safeParse(params);
  if (!parsed.success) throw new Error(`${method}: bad parameters: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data as Params<M>;
}

export function parseResult<M extends Method>(method: M, result: unknown): Result<M> {
  const parsed = rpc[method].result.safeParse(result);
  if (!parsed.success) throw new Error(`${method}: bad result: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data as Result<M>;
}

export function isMethod(name: string): name is Method {
  return Object.hasOwn(rpc, name);
}
