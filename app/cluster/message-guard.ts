/* Receive path for cluster datagrams: layout, type, authentication, replay and body checks, in
 * that order, each refusal counted by reason. Nothing a datagram contains can throw past here. */
import { ReplayWindow } from '../smfa/replay-window.js';
import { decodeEnvelope, EnvelopeError, macMatches } from './envelope.js';
import { AUTHENTICATED, BodyError, decodeBody, messageName, type ClusterMessage } from './messages.js';

export const REJECT_REASONS = [
  'malformed',
  'unauthenticated',
  'no-key',
  'bad-mac',
  'replayed',
  'too-old',
  'address-mismatch',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export interface ReceivedMessage {
  message: ClusterMessage;
  senderId: string;
  senderAddress: string;
  sequence: bigint;
  authenticated: boolean;
}

export type GuardVerdict = { ok: true; received: ReceivedMessage } | { ok: false; reason: RejectReason; detail: string };

export class MessageGuard {
  readonly rejected: Record<RejectReason, number> = Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>;
  accepted = 0;
  private key: Buffer | undefined;
  private readonly windows = new Map<string, ReplayWindow>();

  /** A new cluster key (joined or founded a cluster) starts every sender's replay window afresh. */
  setKey(key: Buffer | undefined): void {
    this.key = key;
    this.windows.clear();
  }

  check(datagram: Buffer, sourceAddress: string): GuardVerdict {
    const verdict = this.classify(datagram, sourceAddress);
    if (verdict.ok) this.accepted += 1;
    else this.rejected[verdict.reason] += 1;
    return verdict;
  }

  private classify(datagram: Buffer, sourceAddress: string): GuardVerdict {
    let envelope;
    let name;
    try {
      envelope = decodeEnvelope(datagram);
      name = messageName(envelope.type);
    } catch (error) {
      if (error instanceof EnvelopeError || error instanceof BodyError) return { ok: false, reason: 'malformed', detail: error.reason };
      throw error;
    }
    if (AUTHENTICATED.has(name) !== envelope.authenticated) {
      return envelope.authenticated
        ? { ok: false, reason: 'malformed', detail: `${name} is a pre-join message and carries no MAC` }
        : { ok: false, reason: 'unauthenticated', detail: `${name} from ${envelope.senderId} has no MAC` };
    }
    if (envelope.authenticated) {
      if (this.key === undefined) return { ok: false, reason: 'no-key', detail: `${name} from ${envelope.senderId}: not a member, no cluster key` };
      if (!macMatches(this.key, envelope)) return { ok: false, reason: 'bad-mac', detail: `${name} from ${envelope.senderId}: MAC does not verify` };
      const window = this.windows.get(envelope.senderId) ?? new ReplayWindow(64);
      this.windows.set(envelope.senderId, window);
      const replay = window.accept(envelope.sequence);
      if (replay !== 'fresh') {
        return { ok: false, reason: replay, detail: `${name} from ${envelope.senderId} sequence ${envelope.sequence} ${replay}` };
      }
    }
    if (envelope.senderAddress !== sourceAddress) {
      return { ok: false, reason: 'address-mismatch', detail: `${envelope.senderId} claims ${envelope.senderAddress} but sent from ${sourceAddress}` };
    }
    try {
      const message = decodeBody(name, envelope.body);
      return { ok: true, received: { message, senderId: envelope.senderId, senderAddress: envelope.senderAddress, sequence: envelope.sequence, authenticated: envelope.authenticated } };
    } catch (error) {
      if (error instanceof BodyError) return { ok: false, reason: 'malformed', detail: error.reason };
      throw error;
    }
  }
}
