/* What a server reports as its load: established TCP connections on the service port (from
 * /proc/net/tcp{,6}, which shows the agent's own network namespace) and the share of CPU time spent
 * busy since the previous reading (from /proc/stat, for the whole machine). */
import { existsSync, readFileSync } from 'node:fs';

const TCP_ESTABLISHED = '01';

/** Connections in state ESTABLISHED whose local port is `port` (0: any port). */
export function establishedConnections(port: number, tables = ['/proc/net/tcp', '/proc/net/tcp6']): number {
  const localPort = port.toString(16).toUpperCase().padStart(4, '0');
  let count = 0;
  for (const table of tables) {
    if (!existsSync(table)) continue;
    // Columns: sl local_address rem_address st ...; addresses are HEXIP:HEXPORT.
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state === TCP_ESTABLISHED && (port === 0 || local?.endsWith(`:${localPort}`))) count += 1;
    }
  }
  return count;
}

interface CpuTimes {
  busy: number;
  total: number;
}

function readCpuTimes(): CpuTimes {
  const [cpuLine] = readFileSync('/proc/stat', 'utf8').split('\n');
  // cpu user nice system idle iowait irq softirq steal ...
  const fields = (cpuLine ?? '').trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((sum, value) => sum + value, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** CPU busy share between successive calls (0..1). */
export class CpuMeter {
  #last = readCpuTimes();

  read(): number {
    const now = readCpuTimes();
    const total = now.total - this.#last.total;
    const busy = now.busy - this.#last.busy;
    this.#last = now;
    return total > 0 ? Math.min(1, Math.max(0, busy / total)) : 0;
  }
}
