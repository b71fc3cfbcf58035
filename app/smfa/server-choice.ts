/* Server choice by rendezvous (highest random weight) hashing of the client's flow: every manager
 * with the same server list picks the same server for a flow, so a backup manager that adopts a
 * flow it never saw decides as the primary did, and removing a server moves only its own flows. */
import { keyText } from './ip-packet.js';
import type { AffinityKey } from './types.js';

export interface Server {
  ip: string;
  port: number;
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  // Final avalanche (murmur3 fmix32) so nearby keys spread.
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b) >>> 0;
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35) >>> 0;
  return (hash ^ (hash >>> 16)) >>> 0;
}

export function chooseServer(servers: readonly Server[], clientKey: AffinityKey): Server {
  const flow = keyText(clientKey);
  let best: Server | undefined;
  let bestScore = -1;
  for (const server of servers) {
    const score = fnv1a(`${server.ip}:${server.port}|${flow}`);
    if (score > bestScore) [best, bestScore] = [server, score];
  }
  if (!best) throw new RangeError('a virtual service needs at least one server');
  return best;
}
