/* tcpdump inside a namespace, its decoded lines kept with the capture time: what really went over
 * a segment (e.g. the gratuitous ARP of a new master, the source ports of full-NAT connections). */
import { spawn, type ChildProcess } from 'node:child_process';

export interface CapturedLine {
  /** Capture time, ms since the epoch (tcpdump -tt). */
  at: number;
  text: string;
}

export class Capture {
  readonly lines: CapturedLine[] = [];
  private readonly child: ChildProcess;
  private rest = '';
  private readonly ready: Promise<void>;

  constructor(namespace: string, iface: string, filter: string[]) {
    this.child = spawn('ip', ['netns', 'exec', namespace, 'tcpdump', '-i', iface, '-nn', '-e', '-tt', '-l', '-U', ...filter], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (chunk: Buffer) => {
      const text = this.rest + chunk.toString();
      const lines = text.split('\n');
      this.rest = lines.pop() ?? '';
      for (const line of lines) {
        const match = /^(\d+\.\d+) (.*)$/.exec(line);
        if (match) this.lines.push({ at: Math.round(Number(match[1]) * 1000), text: match[2] as string });
      }
    });
    // tcpdump says "listening on ..." on stderr once the capture runs.
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`tcpdump in ${namespace} did not start`)), 15_000);
      this.child.stderr?.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('listening on')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }

  started(): Promise<void> {
    return this.ready;
  }

  stop(): void {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
  }
}
