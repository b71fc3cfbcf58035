/* One member's requests to its peers' management APIs, authenticated with its own unit
 * certificate (the peers accept it for the cluster-internal /api/peer/ routes only). Every peer is
 * asked in parallel; a peer that does not answer in time is reported, not waited for. */
import { Agent, request } from 'node:https';
import type { ClusterPeerAddress } from './cluster-source.js';
import type { ManagementTls } from './server.js';

export type PeerAnswer<T> = ClusterPeerAddress & ({ ok: true; value: T; answeredInMs: number } | { ok: false; error: string });

export class PeerClient {
  readonly #agent: Agent;

  constructor(
    tls: ManagementTls,
    readonly port: number,
    readonly timeoutMs = 3000,
  ) {
    this.#agent = new Agent({ ...tls, keepAlive: true, maxSockets: 4 });
  }

  call<T>(peer: ClusterPeerAddress, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        { host: peer.address, port: this.port, path, method, agent: this.#agent, timeout: this.timeoutMs, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {} },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if (response.statusCode === 200) {
              try {
                return resolve(JSON.parse(text) as T);
              } catch (error) {
                return reject(new Error(`${peer.id}: answer is not JSON: ${(error as Error).message}`));
              }
            }
            let message = text.slice(0, 300);
            try {
              message = (JSON.parse(text) as { message?: string }).message ?? message;
            } catch {
              // not JSON: keep the text
            }
            reject(new Error(`${peer.id} answered ${response.statusCode}: ${message}`));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${peer.id} (${peer.address}:${this.port}) did not answer within ${this.timeoutMs} ms`)));
      req.on('error', (error) => reject(new Error(`${peer.id} (${peer.address}:${this.port}): ${error.message}`)));
      req.end(payload);
    });
  }

  /** Asks every peer at once; each answer says whether and how fast it came. */
  all<T>(peers: ClusterPeerAddress[], method: 'GET' | 'POST', path: string, body?: unknown): Promise<PeerAnswer<T>[]> {
    return Promise.all(
      peers.map(async (peer): Promise<PeerAnswer<T>> => {
        const started = Date.now();
        try {
          const value = await this.call<T>(peer, method, path, body);
          return { ...peer, ok: true, value, answeredInMs: Date.now() - started };
        } catch (error) {
          return { ...peer, ok: false, error: (error as Error).message };
        }
      }),
    );
  }

  close(): void {
    this.#agent.destroy();
  }
}
