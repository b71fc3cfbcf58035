/* Announces advertised addresses through a running bird2 (SMFA-R14): writes its configuration and
 * asks it to reload (`birdc configure`), which adds and withdraws the BGP routes. */
import { execFile } from 'node:child_process';
import { writeFile, rename } from 'node:fs/promises';
import { promisify } from 'node:util';
import { birdConfig, type BirdSettings } from './bird-config.js';
import type { Advertiser } from './forwarding-agent.js';

const execFileAsync = promisify(execFile);

export interface BirdAdvertiserOptions extends BirdSettings {
  /** The file bird was started with (`bird -c`). */
  configPath: string;
  /** bird's control socket (`bird -s`). */
  socketPath: string;
}

export class BirdAdvertiser implements Advertiser {
  constructor(private readonly options: BirdAdvertiserOptions) {}

  /** The configuration bird should start with: nothing announced yet. */
  async writeInitialConfig(): Promise<void> {
    await this.#write([]);
  }

  async update(prefixes: string[]): Promise<void> {
    await this.#write(prefixes);
    const { stdout } = await execFileAsync('birdc', ['-s', this.options.socketPath, 'configure'], { timeout: 10_000 });
    if (!/Reconfigured|Reconfiguration in progress/.test(stdout)) throw new Error(`birdc configure: ${stdout.trim()}`);
  }

  async #write(prefixes: string[]): Promise<void> {
    const temporary = `${this.options.configPath}.new`;
    await writeFile(temporary, birdConfig(this.options, prefixes));
    await rename(temporary, this.options.configPath);
  }
}
