/* One forwarding agent with its own data plane (own EAL), driven by the test over IPC. */
import { Dataplane } from '../../firmware/dataplane.js';
import { BirdAdvertiser, type BirdAdvertiserOptions } from '../../app/smfa/advertise.js';
import { ForwardingAgent } from '../../app/smfa/forwarding-agent.js';
import { serveRequests } from './child.js';
import { authenticator } from './security.js';

export interface AgentConfig {
  filePrefix: string;
  vdevs: string[];
  ports: { address: string; prefixLength: number; address6?: string; prefixLength6?: number }[];
  localAddresses: { port: number; ip: string }[];
  routes: { prefix: string; length: number; port: number }[];
  neighbors: { ip: string; port: number; mac: string }[];
  group: string;
  groupPort: number;
  senderId: number;
  bird?: BirdAdvertiserOptions;
  /** The data plane's hold buffer per worker (interest criteria hold flag). */
  holdCapacity?: number;
}

const config = JSON.parse(process.argv[2]!) as AgentConfig;
const dataplane = Dataplane.init(
  { lcores: [0, 1], memoryMb: 512, noHuge: true, filePrefix: config.filePrefix, vdevs: config.vdevs },
  { missPolicy: 'drop', affinityCapacity: 1 << 17, flowCapacityPerWorker: 1 << 14, ...(config.holdCapacity ? { hold: { capacityPerWorker: config.holdCapacity } } : {}) },
);
config.ports.forEach((port, id) => dataplane.configurePort(id, port));
for (const local of config.localAddresses) dataplane.addLocalAddress(local.port, local.ip);
for (const route of config.routes) dataplane.addRoute(route.prefix, route.length, route.port);
for (const neighbor of config.neighbors) dataplane.setNeighbor(neighbor.ip, neighbor.port, neighbor.mac);
dataplane.start();

const agent = await ForwardingAgent.start({
  dataplane,
  transport: {
    port: 0,
    group: config.group,
    groupPort: config.groupPort,
    multicastInterface: '127.0.0.1',
    multicastTtl: 0,
    authenticator: authenticator(config.senderId),
  },
  identity: { ip: '127.0.0.1', hostName: config.filePrefix },
  ...(config.bird ? { advertiser: new BirdAdvertiser(config.bird) } : {}),
});

serveRequests(
  agent.transports.unicast.port,
  {
    counters: () => agent.counters,
    stats: () => {
      const stats = dataplane.stats();
      return {
        agent: agent.counters,
        wildcards: agent.wildcardCount,
        unicast: agent.transports.unicast.counters,
        group: agent.transports.group.counters,
        dataplane: { lookups: stats.lookups, flows: stats.flows, punted: stats.punted, injected: stats.injected, drops: stats.drops, interest: stats.interest },
        forwardIps: dataplane.forwardIpCounters(),
        affinities: dataplane.listAffinities({ includeLearned: false }),
        roundTripsMicros: agent.roundTripsMicros,
      };
    },
  },
  async () => {
    await agent.stop();
    dataplane.close();
  },
);
