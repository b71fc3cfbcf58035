import { afterEach, describe, expect, it } from 'vitest';
import { encodeMessage, encodeSegment } from './codec.js';
import { MessageAuthenticator } from './message-authenticator.js';
import { MAC_OFFSET, computeMessageMac } from './message-mac.js';
import type { Message } from './types.js';
import { SmfaTransport } from './udp-transport.js';

// Interface 127.0.0.1 with TTL 0 keeps every multicast datagram on this host.
const LOOPBACK = '127.0.0.1';
const GROUP = '239.192.78.99';
const secret = Buffer.from('transport test secret');
const keys = new Map([[1, secret]]);

const wildcard: Message = {
  type: 'affinity-update-wildcard',
  wildcard: { protocol: 6, srcIp: '0.0.0.0', srcMask: '0.0.0.0', dstIp: '192.0.2.10', dstMask: '255.255.255.255', srcPort: 0, dstPort: 443, dispatch: 'none', information: false, ttlSeconds: 30 },
  actions: {},
};
const fixed: Message = {
  type: 'affinity-update-fixed',
  fixed: { key: { protocol: 6, srcIp: '198.51.100.7', dstIp: '192.0.2.10', srcPort: 40000, dstPort: 443 }, dispatch: 'gre', information: true, forwardIp: '10.1.0.5', ttlSeconds: 60 },
  actions: {},
};

async function waitFor(what: string, condition: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const open: SmfaTransport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

async function peer(senderId: number, port: number, groupPort: number) {
  const inbox: Message[] = [];
  const transport = await SmfaTransport.open({
    port,
    groupPort,
    group: GROUP,
    multicastInterface: LOOPBACK,
    multicastTtl: 0,
    authenticator: new MessageAuthenticator({ keys, sendKeyId: 1, senderId }),
    onMessage: (m) => inbox.push(m),
  });
  open.push(transport);
  return { transport, inbox };
}

async function smAndFa() {
  const fa = await peer(2, 0, 0);
  const sm = await peer(1, 0, fa.transport.port);
  return { sm, fa };
}

describe('SmfaTransport over loopback', () => {
  it('delivers a wildcard multicast to the group and a fixed affinity unicast', async () => {
    const { sm, fa } = await smAndFa();
    await sm.transport.sendToGroup(wildcard);
    await sm.transport.send(fixed, LOOPBACK, fa.transport.port);
    await waitFor('both messages', () => fa.inbox.length === 2);
    expect(fa.inbox).toEqual([wildcard, fixed]);
    expect(fa.transport.counters).toMatchObject({ received: 2, accepted: 2 });
  });

  it('ignores and counts a datagram with a bad MAC and a replayed one', async () => {
    const { sm, fa } = await smAndFa();
    const forged = encodeMessage(fixed, { seal: { keyId: 1, secret: Buffer.from('wrong'), senderId: 1, sequence: 1n } });
    const genuine = new MessageAuthenticator({ keys, sendKeyId: 1, senderId: 9 }).seal(fixed);
    for (const d of [forged, genuine, genuine]) await sm.transport.sendRaw(d, LOOPBACK, fa.transport.port);
    await waitFor('three datagrams', () => fa.transport.counters.received === 3);
    expect(fa.transport.counters.rejected).toMatchObject({ 'bad-mac': 1, replayed: 1 });
    expect(fa.inbox).toEqual([fixed]);
  });

  it('answers an authentic message with an unknown required segment with a deny naming it', async () => {
    const { sm, fa } = await smAndFa();
    const datagram = Buffer.concat([
      encodeMessage(fixed, { seal: { keyId: 1, secret, senderId: 5, sequence: 1n } }),
      encodeSegment({ kind: 'backup-precedence', value: 0 }).fill(0x7f, 0, 1),
    ]);
    datagram.writeUInt16BE(datagram.length, 2);
    computeMessageMac(datagram, secret).copy(datagram, MAC_OFFSET);
    await sm.transport.sendRaw(datagram, LOOPBACK, fa.transport.port);
    await waitFor('the deny', () => sm.inbox.length === 1);
    expect(sm.inbox[0]).toEqual({ type: 'affinity-update-deny', actionList: [{ segmentType: 0x7f, required: true }] });
    expect(fa.transport.counters).toMatchObject({ errorRepliesSent: 1, rejected: { malformed: 1 } });
  });

  it('does not answer a forged message, so it cannot be used to reflect traffic', async () => {
    const { sm, fa } = await smAndFa();
    const forged = Buffer.concat([encodeMessage(fixed, { seal: { keyId: 1, secret: Buffer.from('x'), senderId: 5, sequence: 1n } }), encodeSegment({ kind: 'backup-precedence', value: 0 }).fill(0x7f, 0, 1)]);
    forged.writeUInt16BE(forged.length, 2);
    await sm.transport.sendRaw(forged, LOOPBACK, fa.transport.port);
    await waitFor('the forged datagram', () => fa.transport.counters.received === 1);
    expect(fa.transport.counters).toMatchObject({ errorRepliesSent: 0, rejected: { 'bad-mac': 1 } });
  });
});
