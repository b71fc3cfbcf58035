import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import { Notifier, watchdogIntervalMs } from './notify.js';

// Node cannot bind a unix datagram socket: a python3 listener stands in for systemd's notify socket
// and prints every datagram it receives as one JSON line.
const LISTENER = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1].replace("@", "\\0", 1) if sys.argv[1].startswith("@") else sys.argv[1])
print("bound", flush=True)
while True:
    print(json.dumps(s.recv(4096).decode()), flush=True)
`;

interface Listener {
  socket: string;
  next(): Promise<string>;
}

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup) await step();
  cleanup = [];
});

async function notifySocket(abstractName?: string): Promise<Listener> {
  const dir = await mkdtemp(join(tmpdir(), 'notify-test-'));
  const socket = abstractName ?? join(dir, 'notify');
  const child: ChildProcess = spawn('python3', ['-c', LISTENER, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanup.push(async () => {
    child.kill();
    await rm(dir, { recursive: true, force: true });
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = await lines.next();
  expect(first.value).toBe('bound');
  return {
    socket,
    next: async () => {
      const line = await lines.next();
      if (line.done) throw new Error('notify listener exited');
      return JSON.parse(line.value as string) as string;
    },
  };
}

const logger = pino({ level: 'silent' });

describe('Notifier', () => {
  it('sends READY=1 with the status, WATCHDOG=1 every WATCHDOG_USEC/2, then STOPPING=1', async () => {
    const listener = await notifySocket();
    let flows = 0;
    const notifier = new Notifier(logger, { NOTIFY_SOCKET: listener.socket, WATCHDOG_USEC: '400000' });
    expect(notifier.watchdogIntervalMs).toBe(200);
    const started = Date.now();
    notifier.ready(() => `ports up 2/2, services 1, flows ${flows++}`);
    expect(await listener.next()).toMatch(/READY=1\nSTATUS=ports up 2\/2, services 1, flows 0/);
    expect(await listener.next()).toMatch(/WATCHDOG=1\nSTATUS=ports up 2\/2, services 1, flows 1/);
    expect(await listener.next()).toMatch(/WATCHDOG=1\nSTATUS=.*flows 2/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
    notifier.stopping('stopping on SIGTERM');
    // A watchdog ping already in flight may land first; nothing follows STOPPING=1.
    let message = await listener.next();
    if (message.startsWith('WATCHDOG=1')) message = await listener.next();
    expect(message).toMatch(/STOPPING=1\nSTATUS=stopping on SIGTERM/);
  });

  it('does nothing outside systemd (no NOTIFY_SOCKET)', async () => {
    const notifier = new Notifier(logger, { WATCHDOG_USEC: '400000' });
    expect(notifier.enabled).toBe(false);
    expect(notifier.watchdogIntervalMs).toBeUndefined();
    notifier.ready(() => 'unused');
    notifier.stopping('unused');
  });

  it('logs a watchdog ping that comes late: the event loop stalled', async () => {
    const listener = await notifySocket();
    const lines: string[] = [];
    const recording = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    const notifier = new Notifier(recording, { NOTIFY_SOCKET: listener.socket, WATCHDOG_USEC: '400000' });
    notifier.ready(() => 'stalling');
    expect(await listener.next()).toBe('READY=1\nSTATUS=stalling');
    const until = Date.now() + 500;
    while (Date.now() < until); // blocks the event loop past the 200 ms ping
    expect(await listener.next()).toBe('WATCHDOG=1\nSTATUS=stalling');
    notifier.stopping('done');
    expect(lines.map((line) => JSON.parse(line).msg)).toEqual([expect.stringMatching(/^watchdog ping \d+ ms late: the event loop stalled$/)]);
  });

  it('sends to an abstract-namespace socket (@name)', async () => {
    const listener = await notifySocket(`@edgeplane-notify-test-${process.pid}`);
    const notifier = new Notifier(logger, { NOTIFY_SOCKET: listener.socket });
    notifier.ready(() => 'abstract');
    expect(await listener.next()).toBe('READY=1\nSTATUS=abstract');
    notifier.stopping('done');
  });

  it('logs a notification it cannot send and goes on', () => {
    const lines: string[] = [];
    const recording = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    new Notifier(recording, { NOTIFY_SOCKET: 'relative/notify' }).ready(() => 'x');
    new Notifier(recording, { NOTIFY_SOCKET: '/nonexistent/edgeplane/notify' }).ready(() => 'x');
    expect(lines.map((line) => JSON.parse(line).msg)).toEqual([
      'systemd notification failed: NOTIFY_SOCKET "relative/notify" is not an absolute path or @abstract name',
      'systemd notification failed: sending to NOTIFY_SOCKET /nonexistent/edgeplane/notify: ENOENT',
    ]);
  });
});

describe('watchdogIntervalMs', () => {
  it('is half of WATCHDOG_USEC, only for the watched process', () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 42)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '7' }, 42)).toBeUndefined();
    expect(watchdogIntervalMs({}, 42)).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: 'soon' }, 42)).toBeUndefined();
  });
});
