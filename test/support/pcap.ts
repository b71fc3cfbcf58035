/* Runs pcap replay scenarios for the tests: writes input pcaps with scapy (test/pcap/packets.py),
 * replays them through the data plane in a child process (pcap-replay.ts) and decodes the output
 * pcaps with scapy again, so expectations never rest on the data plane's own packet code. */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ReplayResult, ReplayScenario } from './pcap-replay.js';

/* Asynchronous on purpose: scapy takes seconds on a loaded host, and a synchronous child blocks the
 * vitest worker's RPC long enough to fail the run ("Timeout calling onTaskUpdate"). */
const run = promisify(execFile);

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const PACKETS_PY = path.join(root, 'test/pcap/packets.py');
const REPLAY_TS = path.join(here, 'pcap-replay.ts');
const TSX = path.join(root, 'node_modules/.bin/tsx');
/* scapy lives in Debian's python; a python3 earlier on PATH may not have it. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** A frame for packets.py to build (see its build()). */
export type FrameSpec = Record<string, unknown> & { kind: string };

export interface Frame {
  hex: string;
  len: number;
  /** Set instead of the decoded fields when scapy cannot dissect the frame (truncated headers). */
  undecodable?: string;
  eth: { src: string; dst: string; type: number };
  arp?: { op: number; hwsrc: string; psrc: string; hwdst: string; pdst: string };
  ip?: IpFields;
  inner?: IpFields;
  gre?: { proto: number; flags: string };
  tcp?: { sport: number; dport: number; flags: string; seq: number; checksumOk: boolean; payload: string };
  udp?: { sport: number; dport: number; checksumOk: boolean };
  icmp?: { type: number; code: number; id: number; seq: number; checksumOk: boolean; payload: string };
  /** An ICMP error: the quoted packet is in `inner` (IP) and `tcp` (its ports). */
  icmpError?: { type: number; code: number; checksumOk: boolean };
}

export interface IpFields {
  src: string;
  dst: string;
  ttl: number;
  proto: number;
  ihl: number;
  len: number;
  id: number;
  flags: number;
  frag: number;
  checksumOk: boolean;
  hex: string;
}

export interface ReplayOutcome extends ReplayResult {
  /** Frames each port transmitted, decoded from its output pcap. */
  out: [Frame[], Frame[]];
  /** The input frames as built, decoded the same way. */
  in: [Frame[], Frame[]];
  /** Punted frames decoded. */
  puntedFrames: Frame[];
}

export type ScenarioSetup = Omit<ReplayScenario, 'input' | 'output' | 'expectRx' | 'resultFile' | 'filePrefix'>;

async function readPcap(file: string): Promise<Frame[]> {
  const { stdout } = await run(PYTHON, [PACKETS_PY, 'read', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return stdout
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Frame);
}

async function decodeFrames(dir: string, hexFrames: string[]): Promise<Frame[]> {
  if (hexFrames.length === 0) return [];
  const specs = path.join(dir, 'punted.json');
  const pcap = path.join(dir, 'punted.pcap');
  writeFileSync(specs, JSON.stringify(hexFrames.map((hex) => ({ kind: 'raw', hex }))));
  await run(PYTHON, [PACKETS_PY, 'write', specs, pcap]);
  return readPcap(pcap);
}

/** Replays port0 and port1 frames through a data plane configured by setup. */
export async function replay(name: string, frames: [FrameSpec[], FrameSpec[]], setup: ScenarioSetup): Promise<ReplayOutcome> {
  const dir = mkdtempSync(path.join(tmpdir(), `ep-pcap-${name}-`));
  const input: [string, string] = [path.join(dir, 'in0.pcap'), path.join(dir, 'in1.pcap')];
  const output: [string, string] = [path.join(dir, 'out0.pcap'), path.join(dir, 'out1.pcap')];
  for (const [i, list] of frames.entries()) {
    const specs = path.join(dir, `in${i}.json`);
    writeFileSync(specs, JSON.stringify(list));
    await run(PYTHON, [PACKETS_PY, 'write', specs, input[i]!]);
  }
  const scenario: ReplayScenario = {
    ...setup,
    input,
    output,
    expectRx: frames[0].length + frames[1].length,
    resultFile: path.join(dir, 'result.json'),
    filePrefix: `ep-pcap-${name}-${process.pid}`,
  };
  const scenarioFile = path.join(dir, 'scenario.json');
  writeFileSync(scenarioFile, JSON.stringify(scenario));
  // Throws (with the child's output) when the child fails or crashes.
  await run(TSX, [REPLAY_TS, scenarioFile], { cwd: root, timeout: 60_000, maxBuffer: 64 << 20 });
  const result = JSON.parse(readFileSync(scenario.resultFile, 'utf8')) as ReplayResult;
  return {
    ...result,
    out: [await readPcap(output[0]), await readPcap(output[1])],
    in: [await readPcap(input[0]), await readPcap(input[1])],
    puntedFrames: await decodeFrames(dir, result.punted.map((p) => p.hex)),
  };
}
