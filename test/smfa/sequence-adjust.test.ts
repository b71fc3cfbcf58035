/* Sequence-number adjustment (SMFA-R13) end to end: a manager that shifts the client's sequence
 * numbers (as a firewall randomising initial sequence numbers does) installs a fixed affinity per
 * direction - seq + D from the client's SYN on, ack - D from the server's SYN-ACK on - and a real
 * TCP exchange through the agent carries 2 MB each way intact. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AffinityKey, Message } from '../../app/smfa/types.js';
import { SmfaTransport } from '../../app/smfa/udp-transport.js';
import { inNamespace } from '../netns/run.js';
import { buildTopology, teardownTopology, type Topology } from '../netns/topology.js';
import { firstAgent, waitFor, type Group } from './agents.js';
import { startChild, type Child } from './child.js';
import { authenticator } from './security.js';

const PREFIX = 'epsmsq';
const GROUP: Group = { group: '239.192.78.62', groupPort: 17862 };
const PORT = 7000;
/** Large enough that the server's numbers for the client cross 2^32 for three ISNs in four. */
const SHIFT = 0xc000_0000;
const BYTES = 2 * 1024 * 1024;
const ALL_PACKETS = 1 << 15;

/** Echoes one connection, then exits. */
const ECHO_SERVER = `
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', ${PORT}))
s.listen(1)
s.settimeout(30)
c, _ = s.accept()
while True:
    b = c.recv(65536)
    if not b:
        break
    c.sendall(b)
c.close()
`;

/** Sends BYTES random bytes, reads the echo; prints both hashes and the length echoed. */
const ECHO_CLIENT = (server: string) => `
import hashlib, os, socket, threading
data = os.urandom(${BYTES})
s = socket.create_connection(('${server}', ${PORT}), timeout=20)
def send():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send)
t.start()
got = bytearray()
while True:
    b = s.recv(65536)
    if not b:
        break
    got += b
t.join()
print(hashlib.sha256(data).hexdigest(), hashlib.sha256(got).hexdigest(), len(got))
`;

function tcpField(packet: Buffer, offset: number): number {
  const ihl = (packet[0]! & 0x0f) * 4;
  return packet.readUInt32BE(ihl + offset);
}

function tcpFlags(packet: Buffer): number {
  return packet[(packet[0]! & 0x0f) * 4 + 13]!;
}

const SYN = 0x02;
const ACK = 0x10;

describe('sequence-number adjustment through a forwarding agent (SMFA-R13)', () => {
  let topology: Topology;
  let agent: Child;
  let manager: SmfaTransport;
  const decided = new Map<string, Message>();
  const seen: { clientIsn?: number; serverAck?: number; returned: number } = { returned: 0 };

  beforeAll(async () => {
    topology = await buildTopology({ prefix: PREFIX, servers: 1 });
    agent = await startChild('agent-process.ts', await firstAgent(topology, GROUP));
    const server = topology.servers[0]!.ip;
    const client = topology.client.ip;
    const wildcard = (srcIp: string, srcPort: number, dstIp: string, dstPort: number): Message => ({
      type: 'affinity-update-wildcard',
      wildcard: { protocol: 6, srcIp, srcMask: '255.255.255.255', dstIp, dstMask: '255.255.255.255', srcPort, dstPort, dispatch: 'none', information: false, ttlSeconds: 60 },
      actions: { interestCriteria: { ip: '0.0.0.0', port: 0, mask: ALL_PACKETS, data: ALL_PACKETS, copy: 0, hold: 0 } },
    });
    manager = await SmfaTransport.open({
      port: 0, ...GROUP, multicastInterface: '127.0.0.1', multicastTtl: 0, authenticator: authenticator(0x5b1),
      onMessage: (m, from) => {
        if (m.type !== 'interest-match-wildcard' || !m.ipPacket) return;
        const answer = decide(m.affinity.key, m.ipPacket);
        if (!answer) return;
        seen.returned++;
        void manager.send({ ...answer, ipPacket: m.ipPacket, faInterestData: m.faInterestData! } as Message, from.address, from.port);
      },
    });
    /** The client's SYN fixes the shift of its direction; the server's SYN-ACK, acknowledging the shifted ISN, the way back. */
    function decide(key: AffinityKey, packet: Buffer): Message | undefined {
      const flow = `${key.srcIp}:${key.srcPort}>${key.dstIp}:${key.dstPort}`;
      const known = decided.get(flow);
      if (known) return known;
      const flags = tcpFlags(packet);
      const fixed = { key, dispatch: 'none' as const, information: false, forwardIp: key.dstIp, ttlSeconds: 60 };
      let answer: Message;
      if (flags === SYN && key.srcIp === client) {
        seen.clientIsn = tcpField(packet, 4);
        answer = { type: 'affinity-update-fixed', fixed, actions: { sequenceAdjust: { seqDelta: SHIFT, initialSeq: seen.clientIsn, ackDelta: 0, initialAck: 0 } } };
      } else if (flags === (SYN | ACK) && key.srcIp === server) {
        seen.serverAck = tcpField(packet, 8);
        answer = { type: 'affinity-update-fixed', fixed, actions: { sequenceAdjust: { seqDelta: 0, initialSeq: 0, ackDelta: (0x1_0000_0000 - SHIFT) >>> 0, initialAck: seen.serverAck } } };
      } else {
        return undefined;
      }
      decided.set(flow, answer);
      return answer;
    }
    await manager.send(wildcard(client, 0, server, PORT), '127.0.0.1', agent.port);
    await manager.send(wildcard(server, PORT, client, 0), '127.0.0.1', agent.port);
    await waitFor('both wildcards', async () => (await agent.request<{ wildcards: number }>('stats')).wildcards === 2);
  });

  afterAll(async () => {
    await manager?.close();
    await agent?.stop();
    await teardownTopology(PREFIX);
  });

  it('shifts the client\'s sequence numbers towards the server and back in the acknowledgements; 2 MB echo arrives intact', async () => {
    const server = topology.servers[0]!;
    const echo = inNamespace(server.namespace, '/usr/bin/python3', ['-c', ECHO_SERVER], { timeoutMs: 40_000 });
    await waitFor('the echo server listening', async () => (await inNamespace(server.namespace, 'ss', ['-ltn', `sport = :${PORT}`])).includes(`:${PORT}`));
    const output = await inNamespace(topology.client.namespace, '/usr/bin/python3', ['-c', ECHO_CLIENT(server.ip)], { timeoutMs: 40_000 });
    await echo;
    const [sent, received, length] = output.trim().split(' ');
    console.log(`sequence adjust: client ISN ${seen.clientIsn}, server acknowledged ${seen.serverAck} (shift 0x${SHIFT.toString(16)}); echoed ${length} bytes, sha256 ${received}`);
    expect(Number(length)).toBe(BYTES);
    expect(received).toBe(sent);
    // The server saw the client's ISN shifted: its SYN-ACK acknowledges ISN + D + 1 (mod 2^32);
    // the client, which accepted the connection, got ISN + 1 back.
    expect(seen.serverAck).toBe((seen.clientIsn! + SHIFT + 1) >>> 0);
    // Only the two handshake packets went up; everything else took the fixed affinities.
    expect(seen.returned).toBe(2);
    const stats = await agent.request<{ affinities: { key: AffinityKey; packets: number; seqAdjust?: { seqDelta: number; ackDelta: number } }[]; agent: Record<string, number> }>('stats');
    expect(stats.affinities).toHaveLength(2);
    expect(stats.affinities.map((a) => a.seqAdjust).sort((a, b) => a!.seqDelta - b!.seqDelta)).toMatchObject([{ seqDelta: 0, ackDelta: (0x1_0000_0000 - SHIFT) >>> 0 }, { seqDelta: SHIFT, ackDelta: 0 }]);
    expect(stats.agent.fixedInstalled).toBe(2);
    expect(stats.affinities.every((a) => a.packets > BYTES / 65536)).toBe(true);
  }, 60_000);
});
