import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { encodeMessage } from './codec.js';
import { openUnauthenticated, type MessageAuthenticator, type OpenResult, type RejectReason } from './message-authenticator.js';
import type { Message } from './types.js';
import { DEFAULT_MULTICAST_GROUP_V4, DEFAULT_PORT, MessageTypeCode } from './wire-constants.js';

export interface TransportOptions {
  port?: number;
  bindAddress?: string;
  group?: string;
  /** Port group sends go to; peers sharing a group all bind it. */
  groupPort?: number;
  /** Local address of the interface that joins the group and sends to it. */
  multicastInterface: string;
  /** 1 keeps announcements on the link; 0 keeps them on this host (tests). */
  multicastTtl?: number;
  /** Without one, messages are neither sealed nor checked. */
  authenticator?: MessageAuthenticator;
  onMessage: (message: Message, from: RemoteInfo, result: Extract<OpenResult, { ok: true }>) => void;
}

export interface TransportCounters {
  received: number;
  accepted: number;
  rejected: Record<RejectReason, number>;
  errorRepliesSent: number;
}

/**
 * SMFA over UDP: one socket for unicast and the multicast group (SMs announce wildcards to the
 * group; fixed affinities and packets go unicast). A message with a required segment this side
 * cannot process is answered with an affinity-update-deny listing that segment (SMFA-R5).
 */
export class SmfaTransport {
  readonly counters: TransportCounters = {
    received: 0,
    accepted: 0,
    rejected: { 'missing-security': 0, 'unknown-key': 0, 'bad-mac': 0, replayed: 0, 'too-old': 0, malformed: 0 },
    errorRepliesSent: 0,
  };

  private constructor(
    private readonly socket: Socket,
    private readonly options: TransportOptions,
    readonly group: string,
    readonly groupPort: number,
    /** Bound port: where unicast replies reach this side. */
    readonly port: number,
  ) {
    socket.on('message', (datagram, from) => this.receive(datagram, from));
  }

  static async open(options: TransportOptions): Promise<SmfaTransport> {
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(options.port ?? DEFAULT_PORT, options.bindAddress ?? '0.0.0.0', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const group = options.group ?? DEFAULT_MULTICAST_GROUP_V4;
    socket.addMembership(group, options.multicastInterface);
    socket.setMulticastInterface(options.multicastInterface);
    socket.setMulticastLoopback(true);
    socket.setMulticastTTL(options.multicastTtl ?? 1);
    return new SmfaTransport(socket, options, group, options.groupPort ?? DEFAULT_PORT, socket.address().port);
  }

  private encode(message: Message): Buffer {
    return this.options.authenticator ? this.options.authenticator.seal(message) : encodeMessage(message);
  }

  send(message: Message, address: string, port: number): Promise<void> {
    return this.sendRaw(this.encode(message), address, port);
  }

  sendToGroup(message: Message): Promise<void> {
    return this.sendRaw(this.encode(message), this.group, this.groupPort);
  }

  sendRaw(datagram: Buffer, address: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(datagram, port, address, (err) => (err ? reject(err) : resolve())));
  }


  private receive(datagram: Buffer, from: RemoteInfo): void {
    this.counters.received++;
    const result = this.options.authenticator?.open(datagram) ?? openUnauthenticated(datagram);
    if (!result.ok) {
      this.counters.rejected[result.reason]++;
      this.replyWithError(datagram, result, from);
      return;
    }
    this.counters.accepted++;
    this.options.onMessage(result.message, from, result);
  }

  /**
   * Only for a sender that authenticated (or when no security is configured), so forged datagrams
   * cannot turn this side into a reflector; never for a deny, so two peers cannot loop on errors.
   */
  private replyWithError(datagram: Buffer, result: Extract<OpenResult, { ok: false }>, from: RemoteInfo): void {
    const error = result.decodeError;
    if (!error?.required || error.segmentType === undefined) return;
    if (this.options.authenticator && !result.authenticated) return;
    if (datagram[1] === MessageTypeCode['affinity-update-deny']) return;
    this.counters.errorRepliesSent++;
    this.send({ type: 'affinity-update-deny', actionList: [{ segmentType: error.segmentType, required: true }] }, from.address, from.port).catch(() => {
      // A lost error reply is like a lost datagram: the sender's retry or TTL refresh covers it.
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
