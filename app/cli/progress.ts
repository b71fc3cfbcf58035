/* A one-line progress bar on stderr for long operations; plain lines when stderr is not a terminal. */

export class ProgressBar {
  #lastPercent = -1;

  constructor(
    readonly label: string,
    readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  /** done and total in the same unit; the line shows `what` (e.g. "12/40 connections"). */
  update(done: number, total: number, what: string): void {
    const percent = total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 100;
    if (this.stream.isTTY) {
      const filled = Math.round(percent / 4);
      this.stream.write(`\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(25 - filled)}] ${percent}% ${what}   `);
    } else if (percent !== this.#lastPercent && (percent === 100 || percent - this.#lastPercent >= 10)) {
      this.stream.write(`${this.label} ${percent}% ${what}\n`);
    }
    this.#lastPercent = percent;
  }

  finish(message: string): void {
    this.stream.write(this.stream.isTTY ? `\r${message}\x1b[K\n` : `${message}\n`);
  }
}
