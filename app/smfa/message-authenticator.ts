import { timingSafeEqual } from 'node:crypto';
import { decodeMessage, decodeSegment, encodeMessage, type DecodeResult } from './codec.js';
import type { DecodeError } from './errors.js';
import { MAC_OFFSET, computeMessageMac } from './message-mac.js';
import { ReplayWindow } from './replay-window.js';
import type { Message, Security } from './types.js';
import { HMAC_SHA256_LENGTH, MESSAGE_HEADER_LENGTH } from './wire-constants.js';

export type RejectReason = 'missing-security' | 'unknown-key' | 'bad-mac' | 'replayed' | 'too-old' | 'malformed';

/** `authenticated`: the sender proved itself, so replying to it (e.g. with an error) cannot be abused for reflection. */
export type OpenResult =
  | (Extract<DecodeResult, { ok: true }> & { authenticated: boolean })
  | { ok: false; reason: RejectReason; detail: string; authenticated: boolean; decodeError?: DecodeError };

export interface AuthenticatorOptions {
  /** Key id -> shared secret; several ids let keys be rotated without a flag day. */
  keys: ReadonlyMap<number, Buffer>;
  /** Key used for messages this side sends. */
  sendKeyId: number;
  /** This side's id inside the security segment; receivers keep a replay window per sender and key. */
  senderId: number;
  /** When false, security segments are ignored on receipt as the seed prescribes for receivers not expecting them. */
  requireSecurity?: boolean;
  replayWindowSize?: number;
  /** Clock in microseconds; sequences start from it so a restarted sender is not taken for a replayer. */
  nowMicros?: () => bigint;
}

/** Decoding for receivers that do not check security, in the same result shape. */
export function openUnauthenticated(datagram: Buffer): OpenResult {
  const decoded = decodeMessage(datagram);
  if (!decoded.ok) return { ok: false, reason: 'malformed', detail: decoded.error.reason, authenticated: false, decodeError: decoded.error };
  return { ...decoded, authenticated: false };
}

const SECURITY_SEGMENT_END = MAC_OFFSET + HMAC_SHA256_LENGTH;

/** HMAC-SHA-256 authentication and anti-replay for SMFA datagrams (SMFA-R6), with per-outcome counters. */
export class MessageAuthenticator {
  readonly counters: Record<RejectReason | 'accepted', number> = {
    accepted: 0, 'missing-security': 0, 'unknown-key': 0, 'bad-mac': 0, replayed: 0, 'too-old': 0, malformed: 0,
  };
  private readonly windows = new Map<string, ReplayWindow>();
  private lastSequence = 0n;
  private readonly requireSecurity: boolean;
  private readonly nowMicros: () => bigint;

  constructor(private readonly options: AuthenticatorOptions) {
    if (!options.keys.has(options.sendKeyId)) throw new RangeError(`sendKeyId ${options.sendKeyId} is not in the key ring`);
    this.requireSecurity = options.requireSecurity ?? true;
    this.nowMicros = options.nowMicros ?? (() => BigInt(Date.now()) * 1000n);
  }

  /** Sequence = max(previous + 1, now in microseconds): monotonic, and ahead of anything sent before a restart. */
  private nextSequence(): bigint {
    const now = this.nowMicros();
    this.lastSequence = now > this.lastSequence ? now : this.lastSequence + 1n;
    return this.lastSequence;
  }

  seal(msg: Message): Buffer {
    const secret = this.options.keys.get(this.options.sendKeyId)!;
    return encodeMessage(msg, { seal: { keyId: this.options.sendKeyId, secret, senderId: this.options.senderId, sequence: this.nextSequence() } });
  }

  /** Authenticates (when required), checks replay, then decodes. Rejections are counted by reason. */
  open(datagram: Buffer): OpenResult {
    const result = this.requireSecurity ? this.verifyThenDecode(datagram) : openUnauthenticated(datagram);
    this.counters[result.ok ? 'accepted' : result.reason]++;
    return result;
  }

  private verifyThenDecode(datagram: Buffer): OpenResult {
    const reject = (reason: RejectReason, detail: string): OpenResult => ({ ok: false, reason, detail, authenticated: false });
    // The MAC is checked before the body is interpreted, so nothing an unauthenticated sender wrote
    // (including unknown required segments) can provoke a reply.
    const security = this.leadingSecurity(datagram);
    if (security === undefined) return reject('missing-security', 'no security segment right after the header');
    const secret = this.options.keys.get(security.keyId);
    if (secret === undefined) return reject('unknown-key', `key id ${security.keyId} is not configured`);
    if (!timingSafeEqual(computeMessageMac(datagram, secret), security.mac)) return reject('bad-mac', `MAC does not verify under key ${security.keyId}`);
    const verdict = this.windowFor(security).accept(security.sequence);
    if (verdict !== 'fresh') return reject(verdict, `sequence ${security.sequence} from sender ${security.senderId} key ${security.keyId} is ${verdict}`);
    const decoded = decodeMessage(datagram);
    if (!decoded.ok) return { ok: false, reason: 'malformed', detail: decoded.error.reason, authenticated: true, decodeError: decoded.error };
    return { ...decoded, authenticated: true };
  }

  private leadingSecurity(datagram: Buffer): Security | undefined {
    if (datagram.length < SECURITY_SEGMENT_END) return undefined;
    const segment = decodeSegment(datagram.subarray(MESSAGE_HEADER_LENGTH, SECURITY_SEGMENT_END));
    return segment.ok && segment.segment.kind === 'security' ? segment.segment.value : undefined;
  }

  private windowFor(security: Security): ReplayWindow {
    const id = `${security.keyId}/${security.senderId}`;
    let window = this.windows.get(id);
    if (window === undefined) {
      window = new ReplayWindow(this.options.replayWindowSize);
      this.windows.set(id, window);
    }
    return window;
  }
}
