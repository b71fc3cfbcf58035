/* One pcap replay run, in its own process (DPDK's EAL initialises once per process).
 *
 *   tsx test/support/pcap-replay.ts SCENARIO.json
 *
 * Port 0 and port 1 are net_pcap devices reading the scenario's input pcaps and writing the output
 * pcaps. The data plane is configured as the scenario says, started, left running until its ports
 * have received every input frame (net_pcap replays each file once at full speed), given a moment
 * to transmit, then closed so the output pcaps are flushed. The result (port MACs, counters,
 * punted frames) is written as JSON to the scenario's resultFile. */
import { readFileSync, writeFileSync } from 'node:fs';
import {
  Dataplane,
  type DataplaneStats,
  type FixedAffinity,
  type MissPolicy,
  type ServiceDefinition,
  type WildcardAffinity,
} from '../../firmware/dataplane.js';

export interface ReplayScenario {
  /** Input pcaps replayed into port 0 and port 1, output pcaps the ports transmit into. */
  input: [string, string];
  output: [string, string];
  /** Frames the two inputs hold together: the run ends once the ports received them all. */
  expectRx: number;
  resultFile: string;
  filePrefix: string;
  missPolicy?: MissPolicy;
  ports?: { id: number; address: string; prefixLength: number }[];
  localAddresses?: { port: number; ip: string }[];
  routes?: { prefix: string; length: number; port: number; gateway?: string }[];
  neighbors?: { ip: string; port: number; mac: string }[];
  services?: ServiceDefinition[];
  wildcards?: WildcardAffinity[];
  affinities?: FixedAffinity[];
}

export interface ReplayResult {
  macs: string[];
  stats: DataplaneStats;
  punted: { port: number; hex: string }[];
  received: number;
}

const RUN_TIMEOUT_MS = 10_000;
const SETTLE_MS = 300;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function received(stats: DataplaneStats): number {
  return stats.ports.reduce((sum, port) => sum + port.rxPackets, 0);
}

async function replay(scenario: ReplayScenario): Promise<ReplayResult> {
  const vdevs = scenario.input.map((input, i) => `net_pcap${i},rx_pcap=${input},tx_pcap=${scenario.output[i]}`);
  const dp = Dataplane.init(
    { lcores: [0, 1], memoryMb: 512, noHuge: true, filePrefix: scenario.filePrefix, vdevs, logLevel: 'warning' },
    { missPolicy: scenario.missPolicy ?? 'drop', affinityCapacity: 1024, flowCapacityPerWorker: 4096, mbufsPerWorker: 4096 },
  );
  try {
    for (const port of scenario.ports ?? []) dp.configurePort(port.id, { address: port.address, prefixLength: port.prefixLength });
    for (const local of scenario.localAddresses ?? []) dp.addLocalAddress(local.port, local.ip);
    for (const route of scenario.routes ?? []) dp.addRoute(route.prefix, route.length, route.port, route.gateway);
    for (const neighbor of scenario.neighbors ?? []) dp.setNeighbor(neighbor.ip, neighbor.port, neighbor.mac);
    for (const service of scenario.services ?? []) dp.setService(service);
    if (scenario.wildcards) dp.setWildcards(scenario.wildcards);
    for (const affinity of scenario.affinities ?? []) dp.addAffinity(affinity);
    const punted: ReplayResult['punted'] = [];
    dp.onPunt((pkt) => punted.push({ port: pkt.port, hex: pkt.frame.toString('hex') }));
    const macs = dp.ports().map((port) => port.mac);

    dp.start();
    const deadline = Date.now() + RUN_TIMEOUT_MS;
    while (received(dp.stats()) < scenario.expectRx && Date.now() < deadline) await sleep(10);
    await sleep(SETTLE_MS);
    dp.stop(); // drains the punt queue one last time
    const stats = dp.stats();
    return { macs, stats, punted, received: received(stats) };
  } finally {
    dp.close();
  }
}

const scenario = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as ReplayScenario;
const result = await replay(scenario);
writeFileSync(scenario.resultFile, JSON.stringify(result));
