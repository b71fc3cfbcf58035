/* systemd's notify protocol without a native module: Node.js cannot send on a unix datagram
 * socket, so each message is handed to `systemd-notify`, which systemd accepts because
 * edgeplane.service sets NotifyAccess=all (the helper is a child, not the main process). Outside
 * systemd (no NOTIFY_SOCKET) every call is a no-op. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Logger } from 'pino';

const run = promisify(execFile);

export class Notifier {
  readonly #logger: Logger;
  readonly #env: NodeJS.ProcessEnv;
  readonly #enabled: boolean;
  readonly #watchdogMs: number | undefined;
  #watchdog: NodeJS.Timeout | undefined;

  /** Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID the way sd_notify(3) and sd_watchdog_enabled(3) do. */
  constructor(logger: Logger, env: NodeJS.ProcessEnv = process.env, pid = process.pid) {
    this.#logger = logger;
    this.#env = env;
    this.#enabled = Boolean(env['NOTIFY_SOCKET']);
    this.#watchdogMs = this.#enabled ? watchdogIntervalMs(env, pid) : undefined;
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  /** Half of WatchdogSec: how often WATCHDOG=1 goes out; undefined when systemd watches nothing. */
  get watchdogIntervalMs(): number | undefined {
    return this.#watchdogMs;
  }

  /** READY=1 with a status line, then WATCHDOG=1 (with a fresh status) every WatchdogSec/2. */
  async ready(status: () => string): Promise<void> {
    await this.#send(['--ready', `--status=${status()}`]);
    if (this.#watchdogMs === undefined) return;
    this.#watchdog = setInterval(() => void this.#send(['WATCHDOG=1', `STATUS=${status()}`]), this.#watchdogMs);
  }

  /** STOPPING=1: systemd shows "deactivating" and stops expecting watchdog pings. */
  async stopping(status: string): Promise<void> {
    clearInterval(this.#watchdog);
    await this.#send(['STOPPING=1', `STATUS=${status}`]);
  }

  async #send(args: string[]): Promise<void> {
    if (!this.#enabled) return;
    try {
      await run('systemd-notify', args, { env: this.#env, timeout: 5000 });
    } catch (error) {
      this.#logger.warn({ err: error, message: args.join(' ') }, `systemd-notify failed: ${(error as Error).message}`);
    }
  }
}

/** WATCHDOG_USEC / 2 in milliseconds, when the watchdog applies to this process. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  const usec = Number(env['WATCHDOG_USEC']);
  if (!Number.isInteger(usec) || usec <= 0) return undefined;
  const watchedPid = env['WATCHDOG_PID'];
  if (watchedPid !== undefined && Number(watchedPid) !== pid) return undefined;
  return Math.max(1, Math.floor(usec / 2000));
}
