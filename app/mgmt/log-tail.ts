/* Keeps the last lines the control application logged, for GET /api/logs. Add it to the logger as
 * a second destination: pino(options, pino.multistream([{ stream: process.stdout }, { stream: tail }])). */
import { Writable } from 'node:stream';

export class LogTail extends Writable {
  readonly #capacity: number;
  readonly #lines: string[] = [];
  #partial = '';

  constructor(capacity = 2000) {
    super({ decodeStrings: false });
    this.#capacity = capacity;
  }

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: () => void): void {
    const parts = (this.#partial + chunk.toString()).split('\n');
    this.#partial = parts.pop() ?? '';
    for (const line of parts) if (line) this.#lines.push(line);
    if (this.#lines.length > this.#capacity) this.#lines.splice(0, this.#lines.length - this.#capacity);
    callback();
  }

  /** The newest `count` lines, oldest first. */
  tail(count: number): string[] {
    return this.#lines.slice(-count);
  }
}
