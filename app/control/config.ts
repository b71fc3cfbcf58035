/* The control application's configuration file (JSON): its schema, defaults and cross-field rules.
 * Every problem is reported with the JSON path of the field at fault, all at once, so an operator
 * fixes a config in one round instead of one error per restart. */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { familyOf, ipv4ToNumber, ipv6ToBuffer } from '../../firmware/addressing.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';

  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`config ${file} is invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

const ipv4 = z.ipv4({ error: (issue) => `${JSON.stringify(issue.input)} is not an IPv4 address` });
const ipv6 = z.ipv6({ error: (issue) => `${JSON.stringify(issue.input)} is not an IPv6 address` });
/** Where either family works (services, servers, routes); cross-field rules keep them consistent. */
const ipAddress = z.union([z.ipv4(), z.ipv6()], { error: (issue) => `${JSON.stringify(issue.input)} is not an IPv4 or IPv6 address` });
const tcpPort = z.int().min(1).max(65535);
const prefixLength = z.int().min(0).max(32);

const ealSchema = z.strictObject({
  /** The first lcore is the main (Node) thread; every further lcore runs a polling worker. */
  lcores: z
    .array(z.int().min(0))
    .min(2, 'needs a main lcore and at least one worker lcore')
    .refine((lcores) => new Set(lcores).size === lcores.length, 'lcores must not repeat')
    .default([0, 1]),
  memoryMb: z.int().min(64).default(512),
  noHuge: z.boolean().default(false),
  filePrefix: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be 1-32 letters, digits, "_" or "-"')
    .default('edgeplane'),
  vdevs: z.array(z.string().min(1)).default([]),
  allowPci: z.array(z.string().min(1)).default([]),
  logLevel: z.enum(['emerg', 'alert', 'crit', 'error', 'warning', 'notice', 'info', 'debug']).default('notice'),
});

const timeoutSeconds = z.int().min(1).max(86_400);

const dataplaneSchema = z.strictObject({
  affinityCapacity: z.int().min(1).default(65_536),
  flowCapacityPerWorker: z.int().min(1).default(262_144),
  missPolicy: z.enum(['drop', 'punt', 'route']).default('drop'),
  timeouts: z
    .strictObject({
      synSeconds: timeoutSeconds.default(10),
      establishedSeconds: timeoutSeconds.default(300),
      finSeconds: timeoutSeconds.default(30),
      rstSeconds: timeoutSeconds.default(5),
      udpSeconds: timeoutSeconds.default(60),
      otherSeconds: timeoutSeconds.default(30),
    })
    .prefault({}),
});

const portSchema = z.strictObject({
  /** The name DPDK gives the device: the vdev name (net_af_packet0) or the PCI address. */
  device: z.string().min(1),
  address: ipv4,
  prefixLength: prefixLength.default(24),
  /** The unit's IPv6 address on the port: answers neighbour discovery and ping, reaches IPv6 servers. */
  address6: ipv6.optional(),
  /** Default 64. */
  prefixLength6: z.int().min(0).max(128).optional(),
});

const routeSchema = z.strictObject({
  prefix: ipAddress,
  /** Up to 32 for an IPv4 prefix, 128 for an IPv6 one. */
  length: z.int().min(0).max(128),
  port: z.string().min(1),
  gateway: ipAddress.optional(),
});

const serverSchema = z.strictObject({
  address: ipAddress,
  /** 0 in direct-return and tunnel modes: the client's destination port is kept. */
  port: z.int().min(0).max(65535),
  /** Share of new connections; 0 keeps the server configured but drained (no new flows). */
  weight: z.int().min(0).max(65535).default(1),
  /** Where health checks go (a management address) when the server address is only reachable
   * through the data plane; default: the server address. */
  checkAddress: ipAddress.optional(),
});

const healthCheckSchema = z.strictObject({
  type: z.enum(['tcp', 'http']),
  /** The port checked; default: the server's port (the service port when that is 0). */
  port: tcpPort.optional(),
  path: z.string().startsWith('/', 'must start with "/"').optional(),
  expectStatus: z.int().min(100).max(599).optional(),
  intervalMs: z.int().min(100).max(600_000).default(500),
  timeoutMs: z.int().min(50).max(600_000).default(400),
  /** Consecutive successes that put a failed server back, failures that take it out (keepalived's rise/fall). */
  rise: z.int().min(1).max(100).default(2),
  fall: z.int().min(1).max(100).default(2),
});

const snatSchema = z.strictObject({
  ip: ipAddress,
  portMin: tcpPort,
  portMax: tcpPort,
});

/** QoS marks (SR-R5) the data plane puts on a service's packets in one direction. */
const qosMarksSchema = z.strictObject({
  /** DSCP written into the IPv4 TOS / IPv6 traffic class (ECN kept); tunnel modes mark the outer header too. */
  dscp: z.int().min(0).max(63).optional(),
  /** 802.1p priority of the pushed VLAN tag (with mplsLabel and no vlan: the label's traffic class). */
  pcp: z.int().min(0).max(7).optional(),
  /** Push an 802.1Q tag with this VLAN id. */
  vlan: z.int().min(1).max(4094).optional(),
  /** Remove the 802.1Q tag the packet arrived with. */
  vlanPop: z.boolean().optional(),
  /** Push an MPLS label (0-15 are reserved). */
  mplsLabel: z.int().min(16).max(1_048_575).optional(),
  /** Remove the top MPLS label the packet arrived with. */
  mplsPop: z.boolean().optional(),
});

const qosSchema = z.strictObject({
  /** Packets of the service's connections towards the servers. */
  toServer: qosMarksSchema.optional(),
  /** Replies towards the clients (nat and fullnat: other modes' replies bypass the unit). */
  toClient: qosMarksSchema.optional(),
});

const serviceSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, ".", "_" or "-"'),
  /** IPv4 or IPv6; an IPv6 service has IPv6 servers (and snat.ip); its tunnels carry IPv6 in IPv6. */
  vip: ipAddress,
  /** 0 = every port (the client's destination port is kept). */
  port: z.int().min(0).max(65535),
  protocol: z.enum(['tcp', 'udp']),
  algorithm: z.enum(['maglev', 'wrr', 'least-load']).default('maglev'),
  /** Maglev lookup table entries, a prime; the data plane's default 65537 suits pools up to ~650
   * servers (Maglev wants M >= 100 N): larger pools move fewer flows with e.g. 655373. */
  tableSize: z.int().min(7).max(1_000_003).optional(),
  mode: z.enum(['nat', 'fullnat', 'dsr', 'ipip', 'gre', 'gue']).default('nat'),
  snat: snatSchema.optional(),
  guePort: tcpPort.optional(),
  qos: qosSchema.optional(),
  /** Static servers; agents add more at run time (docs/services.md). */
  servers: z.array(serverSchema).default([]),
  healthCheck: healthCheckSchema.optional(),
  /** What happens to the established flows of a server that fails (health, silent agent, drain deadline). */
  onServerFailure: z.enum(['keep', 'reset']).default('keep'),
  /** Longest drain an agent may ask for; a deregistered server is removed at its deadline. */
  maxDrainMs: z.int().min(0).max(3_600_000).default(300_000),
});

const agentKeySchema = z.strictObject({
  /** The agent's name in its messages. */
  id: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, ".", "_" or "-"'),
  /** File holding the agent's HMAC-SHA-256 key (at least 32 bytes; hex or raw). */
  keyFile: z.string().min(1),
});

const agentsSchema = z.strictObject({
  host: z.string().min(1).default('0.0.0.0'),
  port: z.int().min(0).max(65535).default(9181),
  keys: z.array(agentKeySchema).min(1, 'agents need at least one key'),
  /** How often agents report; a server whose agent misses `missedReports` reports in a row is dropped. */
  reportIntervalMs: z.int().min(100).max(60_000).default(1000),
  missedReports: z.int().min(1).max(100).default(3),
  /** Messages whose timestamp is further than this from the appliance's clock are refused (replay window). */
  maxClockSkewMs: z.int().min(1000).max(600_000).default(30_000),
});

const httpSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.int().min(0).max(65535).default(9180),
});

/** The mutual-TLS management API (docs/management.md): operators' certificates chain to caFile. */
const managementSchema = z.strictObject({
  host: z.string().min(1).default('0.0.0.0'),
  port: z.int().min(0).max(65535).default(8443),
  unitId: z.string().min(1),
  caFile: z.string().min(1),
  certFile: z.string().min(1),
  keyFile: z.string().min(1),
});

/** Clustered operation (docs/control.md "Cluster"): the unit's identity comes from its flash config;
 * addresses and ports default to what the flash config says. */
const clusterSchema = z.strictObject({
  /** The unit's flash config directory: identity, unit certificate and key, cluster CA, policy. */
  flashConfigDir: z.string().min(1),
  /** This unit's address on the cluster (management) network; default identity.json unit.mgmtAddress. */
  address: ipv4.optional(),
  multicastGroup: ipv4
    .refine((address) => inSubnet(address, '224.0.0.0', 4), 'must be an IPv4 multicast address (224.0.0.0/4)')
    .default('239.77.0.1'),
  /** UDP port of discovery and keepalives; default identity.json network.clusterPort. */
  multicastPort: tcpPort.optional(),
  /** TLS ports of joins and of flow-state replication; default multicastPort + 1 and + 2. */
  joinPort: tcpPort.optional(),
  replicationPort: tcpPort.optional(),
  /** The management API's port, the same on every member (peers fan out to it). */
  managementPort: tcpPort.default(8443),
  /** How packets for the shared addresses reach the members (CL-R2, flash-config policy
   * cluster.delivery): a shared unicast or multicast MAC, or forwarding through the master. */
  delivery: z.enum(['unicast-mac', 'multicast-mac', 'master-forwarding']).default('unicast-mac'),
  /** The shared addresses (cluster addresses and VIPs, IPv4 or IPv6) the members answer ARP and
   * neighbour solicitations for, and a new master announces by gratuitous ARP or unsolicited
   * neighbour advertisement (CL-R2): on which port, at which shared MAC (none with forwarding
   * delivery: the master's port MAC). */
  announce: z
    .array(
      z.strictObject({
        device: z.string().min(1),
        mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i, 'must be a MAC address like 02:65:70:00:01:64').optional(),
        addresses: z.array(ipAddress).min(1),
      }),
    )
    .default([]),
}).superRefine((cluster, ctx) => {
  cluster.announce.forEach((entry, i) => {
    const group = entry.mac !== undefined && (Number.parseInt(entry.mac.slice(0, 2), 16) & 1) === 1;
    const problem =
      cluster.delivery === 'master-forwarding'
        ? entry.mac !== undefined && 'forwarding delivery answers with the master\'s port MAC: no shared MAC'
        : entry.mac === undefined
          ? `${cluster.delivery} delivery needs the shared MAC`
          : cluster.delivery === 'multicast-mac' && !group
            ? 'multicast-MAC delivery needs a multicast MAC (first octet odd)'
            : cluster.delivery === 'unicast-mac' && group && 'unicast-MAC delivery needs a unicast MAC (first octet even)';
    if (problem) ctx.addIssue({ code: 'custom', path: ['announce', i, 'mac'], message: problem });
  });
});

/** The cluster section a unit started from its flash config runs with. */
export function clusterDefaults(flashConfigDir: string): ClusterConfigSettings {
  return clusterSchema.parse({ flashConfigDir });
}

const logSchema = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
});

export const configSchema = z
  .strictObject({
    eal: ealSchema.prefault({}),
    dataplane: dataplaneSchema.prefault({}),
    ports: z.array(portSchema).min(1, 'the data plane needs at least one port'),
    routes: z.array(routeSchema).default([]),
    services: z.array(serviceSchema).default([]),
    agents: agentsSchema.optional(),
    http: httpSchema.prefault({}),
    management: managementSchema.optional(),
    cluster: clusterSchema.optional(),
    log: logSchema.prefault({}),
  })
  .superRefine((config, ctx) => {
    for (const problem of crossFieldProblems(config)) ctx.addIssue({ code: 'custom', ...problem });
  });

export type ApplianceConfig = z.output<typeof configSchema>;
export type PortSettings = ApplianceConfig['ports'][number];
export type ServiceSettings = ApplianceConfig['services'][number];
export type QosMarks = z.infer<typeof qosMarksSchema>;
export type ServerSettings = ServiceSettings['servers'][number];
export type HealthCheckSettings = NonNullable<ServiceSettings['healthCheck']>;
export type AgentSettings = NonNullable<ApplianceConfig['agents']>;
export type ManagementSettings = NonNullable<ApplianceConfig['management']>;
export type ClusterConfigSettings = NonNullable<ApplianceConfig['cluster']>;

/** Whether a data port's subnet (IPv4, or its IPv6 one) holds the address: a VIP there is a local
 * address of the port; a server there is reached through it. */
export function portSubnetHolds(port: PortSettings, address: string): boolean {
  return familyOf(address) === 6
    ? port.address6 !== undefined && inSubnet(address, port.address6, port.prefixLength6 ?? 64)
    : inSubnet(address, port.address, port.prefixLength);
}

/** Whether ip lies in address/prefixLength (the subnet the port is connected to); addresses of
 * different families never do. */
export function inSubnet(ip: string, address: string, length: number): boolean {
  const family = familyOf(ip);
  if (familyOf(address) !== family) return false;
  if (family === 4) {
    const mask = length === 0 ? 0 : (0xffffffff << (32 - length)) >>> 0;
    return ((ipv4ToNumber(ip) & mask) >>> 0) === ((ipv4ToNumber(address) & mask) >>> 0);
  }
  const a = ipv6ToBuffer(ip);
  const b = ipv6ToBuffer(address);
  for (let bit = 0; bit < length; bit += 8) {
    const mask = length - bit >= 8 ? 0xff : (0xff00 >> (length - bit)) & 0xff;
    if ((a[bit / 8]! & mask) !== (b[bit / 8]! & mask)) return false;
  }
  return true;
}

interface Problem {
  path: (string | number)[];
  message: string;
}

const DIRECT_RETURN_MODES = new Set(['dsr', 'ipip', 'gre', 'gue']);
const TUNNEL_MODES = new Set(['ipip', 'gre', 'gue']);

function crossFieldProblems(config: ApplianceConfig): Problem[] {
  const problems: Problem[] = [];
  const ports = new Map<string, PortSettings>();
  config.ports.forEach((port, i) => {
    if (ports.has(port.device)) {
      problems.push({ path: ['ports', i, 'device'], message: `device "${port.device}" is listed twice` });
    }
    ports.set(port.device, port);
  });

  config.routes.forEach((route, i) => {
    const port = ports.get(route.port);
    const v6 = familyOf(route.prefix) === 6;
    if (!v6 && route.length > 32) {
      problems.push({ path: ['routes', i, 'length'], message: `${route.length} is longer than an IPv4 prefix (32)` });
    }
    if (route.gateway && familyOf(route.gateway) !== familyOf(route.prefix)) {
      problems.push({ path: ['routes', i, 'gateway'], message: `${route.gateway} is not of the prefix ${route.prefix}'s address family` });
      return;
    }
    if (!port) {
      const known = [...ports.keys()].join(', ');
      problems.push({ path: ['routes', i, 'port'], message: `"${route.port}" is not a configured port (ports: ${known})` });
    } else if (v6 && !port.address6) {
      problems.push({ path: ['routes', i, 'port'], message: `an IPv6 route needs port ${port.device} to have an address6 (the source of its neighbour solicitations)` });
    } else if (route.gateway) {
      const [address, length] = v6 ? [port.address6!, port.prefixLength6 ?? 64] : [port.address, port.prefixLength];
      if (!inSubnet(route.gateway, address, length)) {
        problems.push({ path: ['routes', i, 'gateway'], message: `${route.gateway} is not on port ${port.device}'s subnet ${address}/${length}` });
      }
    }
  });
  const hasAddress6 = config.ports.some((port) => port.address6);
  config.services.forEach((service, i) => {
    if (familyOf(service.vip) !== 6) return;
    if (!hasAddress6) {
      problems.push({ path: ['services', i, 'vip'], message: 'an IPv6 service needs a port with an address6 (to find its servers by neighbour discovery)' });
      return;
    }
    if (!TUNNEL_MODES.has(service.mode)) return;
    // The outer source of an IPv6 tunnel is the address6 of the port the server is reached through.
    service.servers.forEach((server, j) => {
      if (familyOf(server.address) !== 6) return; // reported with the service's own rules
      const onPort = config.ports.some((port) => port.address6 && inSubnet(server.address, port.address6, port.prefixLength6 ?? 64));
      const routed = config.routes.some((route) => familyOf(route.prefix) === 6 && inSubnet(server.address, route.prefix, route.length));
      if (!onPort && !routed) {
        problems.push({
          path: ['services', i, 'servers', j, 'address'],
          message: `mode "${service.mode}" sends from the address6 of the port towards ${server.address}, but no port's address6 subnet or IPv6 route reaches it`,
        });
      }
    });
  });

  const names = new Set<string>();
  const endpoints = new Set<string>();
  config.services.forEach((service, i) => {
    if (names.has(service.name)) {
      problems.push({ path: ['services', i, 'name'], message: `service name "${service.name}" is used twice` });
    }
    names.add(service.name);
    const endpoint = `${service.vip}:${service.port}/${service.protocol}`;
    if (endpoints.has(endpoint)) {
      problems.push({ path: ['services', i], message: `another service already listens on ${endpoint}` });
    }
    endpoints.add(endpoint);
    const servers = new Set<string>();
    service.servers.forEach((server, j) => {
      const key = `${server.address}:${server.port}`;
      if (servers.has(key)) {
        problems.push({ path: ['services', i, 'servers', j], message: `server ${key} is listed twice` });
      }
      servers.add(key);
    });
    problems.push(...serviceProblems(service).map((p) => ({ path: ['services', i, ...p.path], message: p.message })));
  });
  config.cluster?.announce.forEach((entry, i) => {
    if (!ports.has(entry.device)) {
      problems.push({ path: ['cluster', 'announce', i, 'device'], message: `"${entry.device}" is not a configured port (ports: ${[...ports.keys()].join(', ')})` });
    }
  });
  const agentIds = new Set<string>();
  config.agents?.keys.forEach((key, i) => {
    if (agentIds.has(key.id)) problems.push({ path: ['agents', 'keys', i, 'id'], message: `agent "${key.id}" is listed twice` });
    agentIds.add(key.id);
  });
  return problems;
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** Rules between a service's mode, addresses and health check; paths are relative to the service. */
function serviceProblems(service: ServiceSettings): Problem[] {
  const problems: Problem[] = [];
  const family = familyOf(service.vip);
  const name = family === 4 ? 'IPv4' : 'IPv6';
  service.servers.forEach((server, j) => {
    if (familyOf(server.address) !== family) {
      problems.push({ path: ['servers', j, 'address'], message: `${server.address} is not ${name} like the vip ${service.vip}` });
    }
  });
  if (service.snat && familyOf(service.snat.ip) !== family) {
    problems.push({ path: ['snat', 'ip'], message: `${service.snat.ip} is not ${name} like the vip ${service.vip}` });
  }
  if (service.mode === 'fullnat' && !service.snat) {
    problems.push({ path: ['snat'], message: 'mode "fullnat" needs snat {ip, portMin, portMax}: the source the servers see' });
  }
  if (service.mode !== 'fullnat' && service.snat) {
    problems.push({ path: ['snat'], message: `only mode "fullnat" translates the source (mode is "${service.mode}")` });
  }
  if (service.snat && service.snat.portMax < service.snat.portMin) {
    problems.push({ path: ['snat', 'portMax'], message: `${service.snat.portMax} is below portMin ${service.snat.portMin}` });
  }
  if (service.tableSize !== undefined && !isPrime(service.tableSize)) {
    problems.push({ path: ['tableSize'], message: `${service.tableSize} is not a prime (e.g. 65537, 655373)` });
  }
  if (service.mode !== 'gue' && service.guePort !== undefined) {
    problems.push({ path: ['guePort'], message: `only mode "gue" uses a GUE port (mode is "${service.mode}")` });
  }
  for (const direction of ['toServer', 'toClient'] as const) {
    const marks = service.qos?.[direction];
    if (marks?.pcp !== undefined && marks.vlan === undefined && marks.mplsLabel === undefined) {
      problems.push({ path: ['qos', direction, 'pcp'], message: 'a priority needs a tag to carry it: give vlan (802.1p) or mplsLabel (traffic class)' });
    }
  }
  if (service.qos?.toClient && DIRECT_RETURN_MODES.has(service.mode)) {
    problems.push({ path: ['qos', 'toClient'], message: `replies of mode "${service.mode}" go from the servers to the clients past the unit: only nat and fullnat mark them` });
  }
  service.servers.forEach((server, j) => {
    if (DIRECT_RETURN_MODES.has(service.mode) && server.port !== 0 && server.port !== service.port) {
      problems.push({
        path: ['servers', j, 'port'],
        message: `mode "${service.mode}" keeps the client's destination port: use 0 or the service port ${service.port}`,
      });
    }
    if (!DIRECT_RETURN_MODES.has(service.mode) && server.port === 0 && service.port !== 0) {
      problems.push({ path: ['servers', j, 'port'], message: `port 0 (keep the client's port) needs service port 0 too` });
    }
  });
  const check = service.healthCheck;
  if (check) {
    if (check.type === 'http' && service.protocol !== 'tcp') {
      problems.push({ path: ['healthCheck', 'type'], message: 'an HTTP check needs a tcp service' });
    }
    if (check.type === 'tcp' && (check.path !== undefined || check.expectStatus !== undefined)) {
      problems.push({ path: ['healthCheck'], message: 'path and expectStatus belong to type "http" checks' });
    }
    if (check.timeoutMs > check.intervalMs) {
      problems.push({ path: ['healthCheck', 'timeoutMs'], message: `${check.timeoutMs} ms is longer than intervalMs ${check.intervalMs}` });
    }
    if (service.port === 0 && check.port === undefined && service.servers.some((s) => s.port === 0)) {
      problems.push({ path: ['healthCheck', 'port'], message: 'a service on every port needs the port to check' });
    }
  }
  return problems;
}

/** `services[0].servers[1].address` style path, `(root)` for the document itself. */
export function jsonPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path
    .map((key, index) => (typeof key === 'number' ? `[${key}]` : `${index === 0 ? '' : '.'}${String(key)}`))
    .join('');
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type' && issue.input === undefined) return 'is required';
  if (issue.code === 'unrecognized_keys') return `unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  return issue.message;
}

/** V8 reports JSON syntax errors by offset; people look for line and column. */
function describeJsonError(text: string, error: Error): string {
  const position = /at position (\d+)/.exec(error.message);
  if (!position) return error.message;
  const offset = Number(position[1]);
  const before = text.slice(0, offset).split('\n');
  const line = before.length;
  const column = (before.at(-1)?.length ?? 0) + 1;
  return `${error.message.replace(/ in JSON at position \d+.*$/, '')} at line ${line} column ${column}`;
}

export function parseConfig(file: string, text: string): ApplianceConfig {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(file, [`not valid JSON: ${describeJsonError(text, error as Error)}`]);
  }
  const result = configSchema.safeParse(document, { reportInput: true });
  if (!result.success) {
    throw new ConfigError(
      file,
      result.error.issues.map((issue) => `${jsonPath(issue.path)}: ${describeIssue(issue)}`),
    );
  }
  return result.data;
}

export function loadConfig(file: string): ApplianceConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [`cannot read the file: ${(error as Error).message}`]);
  }
  return parseConfig(file, text);
}
