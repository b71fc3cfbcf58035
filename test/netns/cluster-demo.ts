/* The main job (npm start, scripts/start.sh): a three-unit appliance cluster in network namespaces,
 * each unit the built control application (dist/app/control/main.js --config) with its own flash
 * config, in front of a client and two nginx servers, until SIGINT or SIGTERM. Whatever a previous
 * run left behind is removed first. The root namespace reaches the management network at
 * 10.77.0.1, so the operator certificate it issues works with the CLI and a browser here. */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiClient, readCredentials } from '../../app/cli/api-client.js';
import { createClusterLab, CLIENT_IP, FULLNAT_PORT, SERVER_GATEWAY, SERVER_IPS, VIP, type ClusterLab } from './cluster-lab.js';

const PREFIX = 'epst';
const UNITS = 3;
const ROOT = path.resolve(import.meta.dirname, '../..');
const DIR = path.join(ROOT, 'out/cluster');
const HOST_ADDRESS = '10.77.0.1';
const P12_PASSWORD = 'edgeplane';

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

function managementApi(lab: ClusterLab): ApiClient {
  const admin = lab.credentials.admin;
  const credentials = readCredentials({ cert: path.join(admin, 'operator.crt'), key: path.join(admin, 'operator.key'), ca: path.join(admin, 'ca.crt') });
  return new ApiClient(lab.managementUrl(1), credentials, 3000);
}

/** Asks unit 1 for the cluster until `done` says it is what we wait for. */
async function waitForCluster<T>(lab: ClusterLab, what: string, done: (cluster: ClusterAnswer) => T | undefined, timeoutMs: number): Promise<T> {
  const api = managementApi(lab);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const result = done(await api.call<ClusterAnswer>('GET', '/api/cluster'));
      if (result !== undefined) return result;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs / 1000} s; logs in ${DIR}/unit-*.log`);
    await sleep(250);
  }
}

interface ClusterAnswer {
  role: string;
  members: { id: string; role: string; health: string }[];
}

let lab: ClusterLab | undefined;
let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  say(`\n${signal}: stopping the units and removing the demo network`);
  await lab?.destroy();
  process.exit(0);
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));

try {
  say(`building the demo network (prefix ${PREFIX}) and provisioning ${UNITS} units in ${DIR}`);
  lab = await createClusterLab({ prefix: PREFIX, dir: DIR, units: UNITS, entry: 'build', hostAddress: HOST_ADDRESS });
  // A browser takes the operator certificate as PKCS#12.
  const admin = lab.credentials.admin;
  execFileSync('openssl', ['pkcs12', '-export', '-in', path.join(admin, 'operator.crt'), '-inkey', path.join(admin, 'operator.key'), '-certfile', path.join(admin, 'ca.crt'), '-out', path.join(admin, 'operator.p12'), '-passout', `pass:${P12_PASSWORD}`]);
  // Unit 1 first, so it is the master the others join.
  lab.startUnit(1);
  await lab.units[0]!.waitForLog(/management API \(mutual TLS\) on/, 120_000);
  await waitForCluster(lab, 'unit-1 becoming master', (cluster) => (cluster.role === 'master' ? true : undefined), 60_000);
  for (let slot = 2; slot <= UNITS; slot += 1) lab.startUnit(slot);
  const members = await waitForCluster(
    lab,
    `${UNITS} healthy members`,
    (cluster) => (cluster.members.length === UNITS && cluster.members.every((m) => m.health === 'ok') ? cluster.members.map((m) => `${m.id} (${m.role})`).sort() : undefined),
    120_000,
  );
  const relative = (file: string) => path.relative(process.cwd(), file) || '.';
  const cli = `node ${relative(path.join(ROOT, 'dist/app/cli/edgeplane.js'))}`;
  say(`
Cluster is up: ${members.join(', ')}
  client ${CLIENT_IP} (namespace ${lab.lan.client}) -> VIP ${VIP}:80 -> nginx on ${SERVER_IPS.join(' and ')}
  units ${Array.from({ length: UNITS }, (_, i) => `${lab!.unitId(i + 1)} ${lab!.lan.unitAddress(i + 1)}`).join(', ')} (namespaces ${PREFIX}-u1..${UNITS}),
  management network 10.77.0.0/24 (this host: ${HOST_ADDRESS}), management API https://<unit>:8443 on every unit

Send traffic from another shell:
  ip netns exec ${lab.lan.client} curl http://${VIP}/                  # "server 10.0.2.11" or ".12"
  ip netns exec ${lab.lan.client} wrk -t1 -c8 -d30s http://${VIP}/
  ip netns exec ${lab.lan.client} curl http://${VIP}:${FULLNAT_PORT}/             # full NAT: the servers see ${SERVER_GATEWAY}

Operate it with the edgeplane CLI (any unit answers for the whole cluster):
  export EDGEPLANE_URL=${lab.managementUrl(1)} EDGEPLANE_CREDENTIALS=${relative(admin)}
  ${cli} status          # also: members, units, services, servers, flows, events, counters, logs
  ${cli} drain web ${SERVER_IPS[0]}:80 && ${cli} status && ${cli} undrain web ${SERVER_IPS[0]}:80
  ${cli} --url ${lab.managementUrl(2)} --credentials ${relative(lab.credentials.viewer)} drain web ${SERVER_IPS[0]}:80   # read-only: refused

Dashboard: ${lab.managementUrl(1)}/dashboard/ in a browser on this host, with the client
certificate ${relative(path.join(admin, 'operator.p12'))} (password "${P12_PASSWORD}") imported and the cluster CA
${relative(path.join(admin, 'ca.crt'))} trusted.

Unit logs: ${relative(DIR)}/unit-<n>.log. Ctrl-C stops the units and removes the demo network.`);
  // Runs until a signal: the units' output pipes keep the loop busy, this keeps it alive without them.
  setInterval(() => undefined, 60_000);
} catch (error) {
  process.stderr.write(`npm start: ${(error as Error).message}\n`);
  await lab?.destroy();
  process.exit(1);
}
