/* Active health checks of one server, keepalived style: a probe every intervalMs (TCP connect, or
 * HTTP GET with an expected status), each bounded by timeoutMs; `fall` failures in a row take the
 * server out, `rise` successes in a row put it back. A server starts healthy, so a restart of the
 * control application does not empty the pools while the first probes run. */
import { request } from 'node:http';
import { connect } from 'node:net';
import type { HealthCheckSettings } from './config.js';

export interface HealthTarget {
  address: string;
  port: number;
}

export interface ProbeResult {
  ok: boolean;
  /** Why it failed (connection refused, timeout, status 502), for the log. */
  detail: string;
}

function probeTcp(target: HealthTarget, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host: target.address, port: target.port, timeout: timeoutMs });
    const finish = (result: ProbeResult): void => {
      socket.destroy();
      resolve(result);
    };
    socket.once('connect', () => finish({ ok: true, detail: 'connected' }));
    socket.once('timeout', () => finish({ ok: false, detail: `no connection within ${timeoutMs} ms` }));
    socket.once('error', (error) => finish({ ok: false, detail: error.message }));
  });
}

function probeHttp(target: HealthTarget, check: HealthCheckSettings): Promise<ProbeResult> {
  const expected = check.expectStatus ?? 200;
  return new Promise((resolve) => {
    const req = request({
      host: target.address,
      port: target.port,
      path: check.path ?? '/',
      method: 'GET',
      timeout: check.timeoutMs,
      // A fresh connection per probe: a kept-alive socket would hide a server that stopped accepting.
      agent: false,
      headers: { 'user-agent': 'edgeplane-health', connection: 'close' },
    });
    req.once('response', (response) => {
      response.resume();
      const status = response.statusCode ?? 0;
      resolve(status === expected ? { ok: true, detail: `status ${status}` } : { ok: false, detail: `status ${status}, expected ${expected}` });
      req.destroy();
    });
    req.once('timeout', () => {
      req.destroy();
      resolve({ ok: false, detail: `no answer within ${check.timeoutMs} ms` });
    });
    req.once('error', (error) => resolve({ ok: false, detail: error.message }));
    req.end();
  });
}

export function probe(target: HealthTarget, check: HealthCheckSettings): Promise<ProbeResult> {
  return check.type === 'tcp' ? probeTcp(target, check.timeoutMs) : probeHttp(target, check);
}

/** Runs the probes of one server and reports each change of its health. */
export class HealthChecker {
  readonly #target: HealthTarget;
  readonly #check: HealthCheckSettings;
  readonly #onChange: (healthy: boolean, detail: string) => void;
  #healthy = true;
  /** Consecutive results that disagree with the current state. */
  #streak = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(target: HealthTarget, check: HealthCheckSettings, onChange: (healthy: boolean, detail: string) => void) {
    this.#target = target;
    this.#check = check;
    this.#onChange = onChange;
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  start(): void {
    this.#schedule(0);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#runOnce(), delayMs);
    this.#timer.unref();
  }

  async #runOnce(): Promise<void> {
    const started = Date.now();
    const result = await probe(this.#target, this.#check);
    if (this.#stopped) return;
    this.#record(result);
    // Probes start intervalMs apart; a slow probe does not stretch the detection time.
    this.#schedule(Math.max(0, this.#check.intervalMs - (Date.now() - started)));
  }

  #record(result: ProbeResult): void {
    if (result.ok === this.#healthy) {
      this.#streak = 0;
      return;
    }
    this.#streak += 1;
    if (this.#streak >= (this.#healthy ? this.#check.fall : this.#check.rise)) {
      this.#healthy = result.ok;
      this.#streak = 0;
      this.#onChange(this.#healthy, result.detail);
    }
  }
}
