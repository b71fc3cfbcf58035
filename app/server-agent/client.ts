/* The agent's connection to the appliance: one TCP connection, one signed line per message, the
 * appliance's reply line matched to it in order (the appliance answers lines in the order it reads them). */
import { connect, type Socket } from 'node:net';
import { seal, type AgentMessage, type Reply } from './protocol.js';

export class AgentClient {
  readonly #agent: string;
  readonly #key: Buffer;
  readonly #socket: Socket;
  readonly #waiting: { resolve: (reply: Reply) => void; reject: (error: Error) => void }[] = [];
  #buffered = '';

  private constructor(agent: string, key: Buffer, socket: Socket) {
    this.#agent = agent;
    this.#key = key;
    this.#socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.#receive(chunk));
    socket.on('close', () => this.#failAll(new Error('the appliance closed the connection')));
    socket.on('error', (error) => this.#failAll(error));
  }

  static connect(host: string, port: number, agent: string, key: Buffer): Promise<AgentClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port }, () => {
        socket.off('error', reject);
        resolve(new AgentClient(agent, key, socket));
      });
      socket.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.#socket.destroyed;
  }

  /** Signs and sends a message; resolves with the appliance's answer. */
  send(message: AgentMessage): Promise<Reply> {
    return this.sendLine(seal(this.#agent, this.#key, message));
  }

  /** Sends a line exactly as given (tests replay and tamper with lines through this). */
  sendLine(line: string): Promise<Reply> {
    return new Promise((resolve, reject) => {
      if (this.#socket.destroyed) {
        reject(new Error('not connected to the appliance'));
        return;
      }
      this.#waiting.push({ resolve, reject });
      this.#socket.write(line.endsWith('\n') ? line : `${line}\n`);
    });
  }

  close(): void {
    this.#socket.destroy();
  }

  #receive(chunk: string): void {
    this.#buffered += chunk;
    let newline: number;
    while ((newline = this.#buffered.indexOf('\n')) >= 0) {
      const line = this.#buffered.slice(0, newline);
      this.#buffered = this.#buffered.slice(newline + 1);
      this.#waiting.shift()?.resolve(JSON.parse(line) as Reply);
    }
  }

  #failAll(error: Error): void {
    for (const waiter of this.#waiting.splice(0)) waiter.reject(error);
  }
}
