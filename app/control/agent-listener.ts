/* The appliance side of the server agent protocol: a TCP listener on the management network that
 * checks every line (shape, known agent, HMAC, timestamp window, nonce never seen before, message
 * schema) before the service manager acts on it. Each refusal is answered with its reason and
 * counted in edgeplane_agent_messages_refused_total{reason}. */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { Counter, Registry } from 'prom-client';
import { jsonPath, type AgentSettings } from './config.js';
import { RefusedMessage, type ServiceManager } from './services.js';
import {
  envelopeSchema,
  MAX_LINE_BYTES,
  macMatches,
  messageSchema,
  payloadSchema,
  readKeyFile,
  type ParsedMessage,
  type Reply,
} from '../server-agent/protocol.js';

type RefusalReason = 'malformed' | 'unknown-agent' | 'bad-mac' | 'stale' | 'replayed' | RefusedMessage['reason'];

class Refusal extends Error {
  constructor(
    readonly reason: RefusalReason,
    message: string,
  ) {
    super(message);
  }
}

/** Nonces seen inside the timestamp window; older ones cannot come back because their ts would be refused. */
class ReplayGuard {
  readonly #windowMs: number;
  readonly #seen = new Map<string, number>();

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  check(agent: string, ts: number, nonce: string, now: number): void {
    if (Math.abs(now - ts) > this.#windowMs) {
      throw new Refusal('stale', `timestamp is ${now - ts} ms off the appliance clock (window ${this.#windowMs} ms)`);
    }
    for (const [seen, at] of this.#seen) if (now - at > 2 * this.#windowMs) this.#seen.delete(seen);
    const id = `${agent}/${nonce}`;
    if (this.#seen.has(id)) throw new Refusal('replayed', `nonce ${nonce} was already used`);
    this.#seen.set(id, now);
  }
}

export interface AgentListener {
  address: { host: string; port: number };
  registry: Registry;
  close(): Promise<void>;
}

export async function startAgentListener(settings: AgentSettings, services: ServiceManager, logger: Logger): Promise<AgentListener> {
  const keys = new Map(settings.keys.map((entry) => [entry.id, readKeyFile(entry.keyFile)]));
  const replay = new ReplayGuard(settings.maxClockSkewMs);
  const registry = new Registry();
  const accepted = new Counter({
    name: 'edgeplane_agent_messages_accepted_total',
    help: 'Server agent messages acted on, by type',
    labelNames: ['type'],
    registers: [registry],
  });
  const refused = new Counter({
    name: 'edgeplane_agent_messages_refused_total',
    help: 'Server agent messages refused, by reason',
    labelNames: ['reason'],
    registers: [registry],
  });

  function authenticate(line: string): { agent: string; message: ParsedMessage } {
    let document: unknown;
    try {
      document = JSON.parse(line);
    } catch {
      throw new Refusal('malformed', 'not JSON');
    }
    const envelope = envelopeSchema.safeParse(document);
    if (!envelope.success) throw new Refusal('malformed', `envelope: ${describeIssues(envelope.error.issues)}`);
    let payloadDocument: unknown;
    try {
      payloadDocument = JSON.parse(envelope.data.payload);
    } catch {
      throw new Refusal('malformed', 'payload is not JSON');
    }
    const payload = payloadSchema.safeParse(payloadDocument);
    if (!payload.success) throw new Refusal('malformed', `payload: ${describeIssues(payload.error.issues)}`);
    const key = keys.get(payload.data.agent);
    if (!key) throw new Refusal('unknown-agent', `agent "${payload.data.agent}" has no key on this appliance`);
    if (!macMatches(key, envelope.data.payload, envelope.data.mac)) throw new Refusal('bad-mac', 'the MAC does not match the payload');
    replay.check(payload.data.agent, payload.data.ts, payload.data.nonce, Date.now());
    const message = messageSchema.safeParse(payload.data.message);
    if (!message.success) throw new Refusal('malformed', `message: ${describeIssues(message.error.issues)}`);
    return { agent: payload.data.agent, message: message.data };
  }

  function act(agent: string, message: ParsedMessage): Reply {
    switch (message.type) {
      case 'register':
        services.register(agent, message);
        return { ok: true, type: message.type };
      case 'report':
        services.report(agent, message);
        return { ok: true, type: message.type };
      case 'deregister':
        return { ok: true, type: message.type, deadlineMs: services.deregister(agent, message, message.deadlineMs) };
      case 'flow':
        services.advertiseFlow(agent, message);
        return { ok: true, type: message.type };
    }
  }

  function handle(line: string, peer: string): Reply {
    try {
      const { agent, message } = authenticate(line);
      const reply = act(agent, message);
      accepted.inc({ type: message.type });
      return reply;
    } catch (error) {
      if (!(error instanceof Refusal) && !(error instanceof RefusedMessage)) throw error;
      refused.inc({ reason: error.reason });
      logger.warn({ peer, reason: error.reason, detail: error.message }, 'agent message refused');
      return { ok: false, reason: error.reason, detail: error.message };
    }
  }

  function serve(socket: Socket): void {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        socket.write(`${JSON.stringify(handle(line, peer))}\n`);
      }
      if (buffered.length > MAX_LINE_BYTES) {
        refused.inc({ reason: 'malformed' });
        logger.warn({ peer }, `agent line longer than ${MAX_LINE_BYTES} bytes, closing`);
        socket.end(`${JSON.stringify({ ok: false, reason: 'malformed', detail: `line longer than ${MAX_LINE_BYTES} bytes` })}\n`);
        buffered = '';
      }
    });
    socket.on('error', (error) => logger.debug({ peer, err: error }, 'agent connection error'));
  }

  const connections = new Set<Socket>();
  const server: Server = createServer((socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
    serve(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(settings.port, settings.host, () => resolve());
  });
  const bound = server.address();
  const port = typeof bound === 'object' && bound ? bound.port : settings.port;
  logger.info({ host: settings.host, port }, 'agent listener ready');
  return {
    address: { host: settings.host, port },
    registry,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Agents keep their connection open; close() alone would wait for them.
        for (const socket of connections) socket.destroy();
      }),
  };
}

function describeIssues(issues: readonly { path: PropertyKey[]; message: string }[]): string {
  return issues.map((issue) => `${jsonPath(issue.path)}: ${issue.message}`).join('; ');
}
