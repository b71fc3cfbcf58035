export type DecodeErrorCode =
  | 'truncated'
  | 'unsupported-version'
  | 'unknown-message-type'
  | 'length-mismatch'
  | 'bad-segment-length'
  | 'security-not-first'
  | 'unknown-required-segment'
  | 'segment-not-allowed'
  | 'duplicate-segment'
  | 'missing-segment'
  | 'bad-field';

export interface DecodeError {
  code: DecodeErrorCode;
  reason: string;
  /** Byte offset in the datagram where the problem was found. */
  offset: number;
  segmentType?: number;
  /** Set when the offending segment carried the required flag: the sender expects an error reply. */
  required?: boolean;
}

/** Thrown inside the decoder and turned into a DecodeError result at its boundary. */
export class DecodeFailure extends Error {
  constructor(readonly error: DecodeError) {
    super(error.reason);
  }
}

export function fieldFailure(field: string, why: string, offset: number): DecodeFailure {
  return new DecodeFailure({ code: 'bad-field', reason: `${field}: ${why}`, offset });
}

/** The caller handed the encoder a message that cannot be represented on the wire. */
export class EncodeError extends Error {
  constructor(readonly field: string, why: string) {
    super(`${field}: ${why}`);
    this.name = 'EncodeError';
  }
}
