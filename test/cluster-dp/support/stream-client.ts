/* Long-lived TCP connections from the client namespace, driven by the test over IPC: each sends
 * its pattern every 100 ms, checks every byte it receives, and records resets, closes and the
 * longest pause in what it receives after the test's mark (a failover). */
import { connect, type Socket } from 'node:net';
import { CHUNK, checkPattern, pattern, TO_CLIENT, TO_SERVER } from './stream-pattern.js';

interface Connection {
  socket: Socket;
  localPort: number;
  received: number;
  sent: number;
  bad: boolean;
  error?: string;
  closed: boolean;
  lastRxAt: number;
  maxGapMs: number;
  /** When receiving resumed after the longest pause since the mark. */
  resumedAt: number;
}

const connections: Connection[] = [];
let markAt = 0;
const send = (message: object) => process.send?.(message);

function open(host: string, port: number): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.setNoDelay(true);
    const connection: Connection = { socket, localPort: 0, received: 0, sent: 0, bad: false, closed: false, lastRxAt: 0, maxGapMs: 0, resumedAt: 0 };
    const timer = setTimeout(() => reject(new Error(`connect to ${host}:${port} timed out`)), 20_000);
    socket.once('connect', () => {
      clearTimeout(timer);
      connection.localPort = socket.localPort ?? 0;
      connection.lastRxAt = Date.now();
      resolve(connection);
    });
    socket.on('data', (data: Buffer) => {
      const now = Date.now();
      if (!checkPattern(TO_CLIENT, connection.received, data)) connection.bad = true;
      connection.received += data.length;
      const since = Math.max(connection.lastRxAt, markAt);
      if (markAt > 0 && now - since > connection.maxGapMs) {
        connection.maxGapMs = now - since;
        connection.resumedAt = now;
      }
      connection.lastRxAt = now;
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      connection.error ??= error.code ?? error.message;
      clearTimeout(timer);
      reject(error);
    });
    socket.on('close', () => (connection.closed = true));
  });
}

setInterval(() => {
  for (const connection of connections) {
    if (connection.closed || connection.socket.destroyed) continue;
    connection.socket.write(pattern(TO_SERVER, connection.sent, CHUNK / 4));
    connection.sent += CHUNK / 4;
  }
}, 100);

process.on('message', (raw) => {
  const command = raw as { id: number; cmd: string; host?: string; port?: number; count?: number };
  const reply = (result: unknown) => send({ kind: 'reply', id: command.id, result });
  if (command.cmd === 'open') {
    void (async () => {
      try {
        const count = command.count ?? 0;
        for (let i = 0; i < count; i += 20) {
          const batch = await Promise.all(Array.from({ length: Math.min(20, count - i) }, () => open(command.host ?? '', command.port ?? 80)));
          connections.push(...batch);
        }
        reply({ ports: connections.map((c) => c.localPort) });
      } catch (error) {
        reply({ error: (error as Error).message });
      }
    })();
  } else if (command.cmd === 'mark') {
    markAt = Date.now();
    reply({ markAt });
  } else if (command.cmd === 'report') {
    reply(connections.map(({ socket: _socket, ...rest }) => rest));
  } else if (command.cmd === 'close') {
    // Closed for real (FIN answered) while the cluster still runs, so no server keeps a half-open
    // connection that a later test's connection from the same port would run into.
    const closing = connections.splice(0);
    const closed = Promise.all(closing.map((c) => (c.closed ? undefined : new Promise((resolve) => c.socket.once('close', resolve)))));
    for (const connection of closing) connection.socket.end();
    void Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 10_000))]).then(() => {
      const open = closing.filter((c) => !c.closed);
      for (const connection of open) connection.socket.destroy();
      reply({ closed: closing.length - open.length, destroyed: open.length });
    });
  }
});
send({ kind: 'ready' });
