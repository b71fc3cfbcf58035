/* Typed data plane errors. The native binding throws plain Errors whose message starts with a code
 * in brackets ("[ENOPORT] port 7 does not exist"); fromNative() turns them into these classes. */

export type DataplaneErrorCode =
  | 'EINVAL'
  | 'EEAL'
  | 'ENOPORT'
  | 'EFULL'
  | 'ENOENT'
  | 'ESTATE'
  | 'ENOMEM'
  | 'ERULE';

export class DataplaneError extends Error {
  readonly code: DataplaneErrorCode;
  constructor(code: DataplaneErrorCode, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The EAL refused its arguments or could not start (bad lcores, devices, memory). */
export class EalError extends DataplaneError {}
/** A port id that does not exist or is not usable. */
export class UnknownPortError extends DataplaneError {}
/** A table (affinities, flows, routes, neighbours) has no room left. */
export class TableFullError extends DataplaneError {}
/** An affinity, wildcard, service or address that cannot be installed as given. */
export class InvalidRuleError extends DataplaneError {}
/** A call made in the wrong lifecycle state (e.g. configuring ports while running). */
export class StateError extends DataplaneError {}
/** Something asked for does not exist (e.g. removing an unknown service). */
export class NotFoundError extends DataplaneError {}

const classes: Record<DataplaneErrorCode, new (code: DataplaneErrorCode, message: string) => DataplaneError> = {
  EINVAL: InvalidRuleError,
  ERULE: InvalidRuleError,
  EEAL: EalError,
  ENOPORT: UnknownPortError,
  EFULL: TableFullError,
  ENOENT: NotFoundError,
  ESTATE: StateError,
  ENOMEM: TableFullError,
};

export function fromNative(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const match = /^\[([A-Z]+)\] (.*)$/s.exec(err.message);
  if (!match) return err;
  const code = match[1] as DataplaneErrorCode;
  const ErrorClass = classes[code];
  if (!ErrorClass) return err;
  return new ErrorClass(code, match[2] ?? err.message);
}
