/* Two bird2 daemons in namespaces for the advertise test: the unit's (configured by the agent's
 * BirdAdvertiser) and a BGP peer that only learns routes:
 *
 *   [<prefix>-bu] bgp0 10.0.9.1/30 AS 65001 ──veth── bgp0 10.0.9.2/30 AS 65002 [<prefix>-bp]
 *
 * Both namespaces carry the topology prefix, so tearing the topology down stops the daemons. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BirdAdvertiserOptions } from '../../app/smfa/advertise.js';
import { BirdAdvertiser } from '../../app/smfa/advertise.js';
import { inNamespace, run } from '../netns/run.js';

const UNIT = { ip: '10.0.9.1', as: 65001 };
const PEER = { ip: '10.0.9.2', as: 65002 };

export interface BgpPair {
  /** What the agent needs to drive the unit's bird. */
  unit: BirdAdvertiserOptions;
  /** The routes the peer has learned, as `birdc show route` prints them. */
  peerRoutes(): Promise<string>;
}

export async function startBgpPair(prefix: string): Promise<BgpPair> {
  const dir = mkdtempSync(path.join(tmpdir(), `ep-bird-${prefix}-`));
  const [unitNs, peerNs] = [`${prefix}-bu`, `${prefix}-bp`];
  for (const ns of [unitNs, peerNs]) {
    await run('ip', ['netns', 'add', ns]);
    await inNamespace(ns, 'ip', ['link', 'set', 'lo', 'up']);
  }
  await run('ip', ['link', 'add', 'bgp0', 'netns', unitNs, 'type', 'veth', 'peer', 'name', 'bgp0', 'netns', peerNs]);
  for (const [ns, ip] of [[unitNs, UNIT.ip], [peerNs, PEER.ip]] as const) {
    await inNamespace(ns, 'ip', ['address', 'add', `${ip}/30`, 'dev', 'bgp0']);
    await inNamespace(ns, 'ip', ['link', 'set', 'dev', 'bgp0', 'up']);
  }
  const unit: BirdAdvertiserOptions = {
    configPath: path.join(dir, 'unit.conf'),
    socketPath: path.join(dir, 'unit.ctl'),
    routerId: UNIT.ip,
    localAs: UNIT.as,
    neighbors: [{ address: PEER.ip, as: PEER.as }],
  };
  await new BirdAdvertiser(unit).writeInitialConfig();
  const peerConfig = path.join(dir, 'peer.conf');
  const peerSocket = path.join(dir, 'peer.ctl');
  writeFileSync(
    peerConfig,
    `router id ${PEER.ip};
protocol device { }
protocol bgp unit {
  local as ${PEER.as};
  neighbor ${UNIT.ip} as ${UNIT.as};
  ipv4 { import all; export none; };
}
`,
  );
  await inNamespace(unitNs, 'bird', ['-c', unit.configPath, '-s', unit.socketPath, '-P', path.join(dir, 'unit.pid')]);
  await inNamespace(peerNs, 'bird', ['-c', peerConfig, '-s', peerSocket, '-P', path.join(dir, 'peer.pid')]);
  return { unit, peerRoutes: () => run('birdc', ['-s', peerSocket, 'show', 'route', 'protocol', 'unit']) };
}
