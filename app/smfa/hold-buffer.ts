/* Packets an agent keeps until their manager's fixed affinity arrives (SMFA-R15 hold flag), bounded:
 * when full, the oldest held packet is dropped and counted. */
export class HoldBuffer {
  readonly #held = new Map<string, { port: number; frame: Buffer }[]>();
  #count = 0;
  dropped = 0;

  constructor(private readonly capacity: number) {}

  hold(flow: string, port: number, frame: Buffer): void {
    if (this.#count >= this.capacity) this.#dropOldest();
    const list = this.#held.get(flow) ?? [];
    list.push({ port, frame });
    this.#held.set(flow, list);
    this.#count++;
  }

  release(flow: string): { port: number; frame: Buffer }[] {
    const list = this.#held.get(flow) ?? [];
    this.#held.delete(flow);
    this.#count -= list.length;
    return list;
  }

  #dropOldest(): void {
    const [flow, list] = this.#held.entries().next().value as [string, { port: number; frame: Buffer }[]];
    list.shift();
    if (list.length === 0) this.#held.delete(flow);
    this.#count--;
    this.dropped++;
  }

  get size(): number {
    return this.#count;
  }
}
