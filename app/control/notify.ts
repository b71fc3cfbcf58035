/* systemd's notify protocol: READY=1, WATCHDOG=1 and STOPPING=1 go to $NOTIFY_SOCKET as datagrams
 * sent in process by the native addon (firmware/sd-notify.ts). Outside systemd (no NOTIFY_SOCKET)
 * every call is a no-op. */
import type { Logger } from 'pino';
import { sdNotify } from '../../firmware/sd-notify.js';

export class Notifier {
  readonly #logger: Logger;
  readonly #socket: string | undefined;
  readonly #watchdogMs: number | undefined;
  #watchdog: NodeJS.Timeout | undefined;

  /** Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID the way sd_notify(3) and sd_watchdog_enabled(3) do. */
  constructor(logger: Logger, env: NodeJS.ProcessEnv = process.env, pid = process.pid) {
    this.#logger = logger;
    this.#socket = env['NOTIFY_SOCKET'] || undefined;
    this.#watchdogMs = this.#socket ? watchdogIntervalMs(env, pid) : undefined;
  }

  get enabled(): boolean {
    return this.#socket !== undefined;
  }

  /** Half of WatchdogSec: how often WATCHDOG=1 goes out; undefined when systemd watches nothing. */
  get watchdogIntervalMs(): number | undefined {
    return this.#watchdogMs;
  }

  /** READY=1 with a status line, then WATCHDOG=1 (with a fresh status) every WatchdogSec/2. A ping
   * due long ago says the event loop stalled: logged, since systemd kills the service at WatchdogSec. */
  ready(status: () => string): void {
    this.#send(`READY=1\nSTATUS=${status()}`);
    const interval = this.#watchdogMs;
    if (interval === undefined) return;
    let due = Date.now() + interval;
    this.#watchdog = setInterval(() => {
      const late = Date.now() - due;
      if (late > interval / 2) this.#logger.warn({ lateMs: late, watchdogMs: 2 * interval }, `watchdog ping ${late} ms late: the event loop stalled`);
      due = Date.now() + interval;
      this.#send(`WATCHDOG=1\nSTATUS=${status()}`);
    }, interval);
  }

  /** STOPPING=1: systemd shows "deactivating" and stops expecting watchdog pings. */
  stopping(status: string): void {
    clearInterval(this.#watchdog);
    this.#send(`STOPPING=1\nSTATUS=${status}`);
  }

  #send(state: string): void {
    if (this.#socket === undefined) return;
    try {
      sdNotify(this.#socket, state);
    } catch (error) {
      this.#logger.warn({ err: error, message: state }, `systemd notification failed: ${(error as Error).message}`);
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
