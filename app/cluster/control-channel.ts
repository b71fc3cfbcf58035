/* Request/response over one mutual-TLS connection between two units (docs/cluster.md "TLS
 * control channel"): frames are a u32 big-endian length and a JSON object. Either side may send
 * requests; a bad frame closes the connection with the reason. */
import type { TLSSocket } from 'node:tls';
import { z } from 'zod';

const MAX_FRAME = 1 << 20;

const frameSchema = z.union([
  z.strictObject({ req: z.int().min(0), method: z.string().max(64), params: z.unknown() }),
  z.strictObject({ res: z.int().min(0), ok: z.literal(true), result: z.unknown() }),
  z.strictObject({ res: z.int().min(0), ok: z.literal(false), reason: z.string().max(1000) }),
]);

/** The peer answered a request with a refusal; `reason` is its words. */
export class RequestRefused extends Error {
  override readonly name = 'RequestRefused';
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** No answer in time: the peer may still have carried the request out. */
export class RequestTimedOut extends Error {
  override readonly name = 'RequestTimedOut';
}

export type RequestHandler = (method: string, params: unknown) => Promise<unknown>;

export class ControlChannel {
  private nextId = 1;
  private buffered = Buffer.alloc(0);
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
  private closeReason: string | undefined;
  private readonly closeListeners: ((reason: string) => void)[] = [];

  constructor(
    private readonly socket: TLSSocket,
    private readonly handle: RequestHandler,
  ) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error) => this.close(`connection error: ${error.message}`));
    socket.on('close', () => this.close('connection closed by peer'));
  }

  get closed(): boolean {
    return this.closeReason !== undefined;
  }

  onClose(listener: (reason: string) => void): void {
    if (this.closeReason !== undefined) listener(this.closeReason);
    else this.closeListeners.push(listener);
  }

  request(method: string, params: unknown, timeoutMs: number): Promise<unknown> {
    if (this.closeReason !== undefined) return Promise.reject(new Error(`channel closed: ${this.closeReason}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RequestTimedOut(`${method}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.send({ req: id, method, params });
    });
  }

  /** Sends a final refusal for request `id`, then closes (a refused join). */
  refuseAndClose(id: number, reason: string): void {
    this.send({ res: id, ok: false, reason });
    this.socket.end();
    this.close(`refused: ${reason}`, false);
  }

  /** Sends a last request without waiting for its answer, then closes (a member removed). */
  notifyAndClose(method: string, params: unknown, reason: string): void {
    this.send({ req: this.nextId++, method, params });
    this.socket.end();
    this.close(reason, false);
  }

  close(reason: string, destroy = true): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    if (destroy) this.socket.destroy();
    else setTimeout(() => this.socket.destroy(), 1000).unref();
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new Error(`channel closed: ${reason}`));
    }
    this.pending.clear();
    for (const listener of this.closeListeners) listener(reason);
  }

  private send(frame: z.infer<typeof frameSchema>): void {
    const body = Buffer.from(JSON.stringify(frame), 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(body.length);
    if (!this.socket.destroyed) this.socket.write(Buffer.concat([length, body]));
  }

  private receive(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 4 && this.closeReason === undefined) {
      const length = this.buffered.readUInt32BE(0);
      if (length > MAX_FRAME) return this.close(`frame of ${length} bytes exceeds ${MAX_FRAME}`);
      if (this.buffered.length < 4 + length) return;
      const body = this.buffered.subarray(4, 4 + length);
      this.buffered = this.buffered.subarray(4 + length);
      this.dispatch(body);
    }
  }

  private dispatch(body: Buffer): void {
    let frame: z.infer<typeof frameSchema>;
    try {
      frame = frameSchema.parse(JSON.parse(body.toString('utf8')));
    } catch (error) {
      return this.close(`bad frame: ${(error as Error).message.slice(0, 200)}`);
    }
    if ('req' in frame) {
      const id = frame.req;
      this.handle(frame.method, frame.params).then(
        (result) => this.send({ res: id, ok: true, result: result ?? null }),
        (error: unknown) => {
          if (error instanceof FinalRefusal) this.refuseAndClose(id, error.reason);
          else this.send({ res: id, ok: false, reason: error instanceof Error ? error.message : String(error) });
        },
      );
      return;
    }
    const waiting = this.pending.get(frame.res);
    if (waiting === undefined) return;
    this.pending.delete(frame.res);
    clearTimeout(waiting.timer);
    if (frame.ok) waiting.resolve(frame.result);
    else waiting.reject(new RequestRefused(frame.reason));
  }
}

/** Thrown by a handler to refuse and close the channel (a join NAK). */
export class FinalRefusal extends Error {
  override readonly name = 'FinalRefusal';
  constructor(readonly reason: string) {
    super(reason);
  }
}
