/* The service manager: the desired state of every virtual service's server pool - static servers
 * from the config plus servers that agents registered - and the weight each one gets now. A
 * server's effective weight is its configured weight (or the least-load weight), and 0 while it
 * drains or fails its health check. The pool goes to the data plane only when it changed; flows
 * already established stay pinned to their server there (SR-R8). */
import type { Logger } from 'pino';
import type {
  DataplaneStats,
  FixedAffinity,
  FlowKey,
  InstalledAffinity,
  ServiceDefinition,
  ServiceServer,
} from '../../firmware/dataplane.js';
import type { PortSettings, ServiceSettings } from './config.js';
import { HealthChecker } from './health.js';
import { leastLoadWeights, utilisation } from './least-load.js';

/** What the service manager needs from the running appliance. */
export interface ServicePlane {
  services(): { name: string; definition: ServiceDefinition }[];
  replaceServers(serviceName: string, servers: ServiceServer[]): void;
  stats(): DataplaneStats;
  affinities(options: { includeLearned?: boolean }): InstalledAffinity[];
  addAffinity(affinity: FixedAffinity): void;
  removeAffinity(key: FlowKey): boolean;
  flushServer(serviceName: string, server: { ip: string; port: number }): void;
  portSettings(): PortSettings[];
  addService(settings: ServiceSettings, servers?: ServiceServer[]): void;
  removeService(name: string): void;
  updateService(settings: ServiceSettings, servers?: ServiceServer[]): void;
}

/** An agent message the service manager cannot act on; `reason` is a short stable label for metrics. */
export class RefusedMessage extends Error {
  override readonly name = 'RefusedMessage';

  constructor(
    readonly reason: 'unknown-service' | 'not-registered' | 'not-yours' | 'static-server' | 'unsupported',
    message: string,
  ) {
    super(message);
  }
}

export interface ServerRef {
  service: string;
  address: string;
  port: number;
}

export interface Registration extends ServerRef {
  capacity: number;
  /** Health checks of this server go here (its management address) instead of `address`. */
  checkAddress?: string | undefined;
}

export interface LoadReport extends ServerRef {
  connections: number;
  /** 0..1 (and above when overloaded): share of the server's CPU in use. */
  cpu: number;
}

export interface FlowAdvertisement extends ServerRef {
  flow: { protocol: 'tcp' | 'udp'; srcIp: string; srcPort: number; dstPort: number; ttlSeconds: number };
}

interface ManagedServer {
  address: string;
  port: number;
  configuredWeight: number;
  /** The agent that registered it; static servers have none. */
  agentId?: string;
  capacity?: number;
  lastReportAt: number;
  report?: { connections: number; cpu: number };
  health?: HealthChecker;
  drainDeadline?: number;
  /** An operator's weight (management API; 0 drains): kept over health and load changes. */
  operatorWeight?: number;
  /** Fixed affinities installed for its flow advertisements. */
  advertised: FlowKey[];
  /** Response metric bookkeeping: data plane totals at the last tick and the mean of the last window. */
  handshakes: number;
  handshakeMicros: number;
  responseMs: number;
}

interface ManagedService {
  settings: ServiceSettings;
  definition: ServiceDefinition;
  servers: ManagedServer[];
  /** The pool as last pushed, to push only changes. */
  pushed: string;
}

export interface ServerView {
  address: string;
  port: number;
  origin: 'static' | 'agent';
  agentId?: string;
  weight: number;
  healthy: boolean;
  draining: boolean;
  utilisation: number;
  responseMs: number;
}

const TICK_MS = 500;

export class ServiceManager {
  readonly #plane: ServicePlane;
  readonly #logger: Logger;
  readonly #silenceMs: number;
  readonly #services = new Map<string, ManagedService>();
  #timer: NodeJS.Timeout | undefined;
  #started = false;

  /** `silenceMs`: an agent-registered server whose agent sent nothing for this long is removed. */
  constructor(plane: ServicePlane, settings: readonly ServiceSettings[], options: { silenceMs: number; logger: Logger }) {
    this.#plane = plane;
    this.#logger = options.logger;
    this.#silenceMs = options.silenceMs;
    const installed = new Map(plane.services().map(({ name, definition }) => [name, definition]));
    for (const service of settings) {
      const definition = installed.get(service.name);
      if (!definition) throw new Error(`service "${service.name}" is not installed in the data plane`);
      const managed: ManagedService = { settings: service, definition, servers: [], pushed: poolKey(definition.servers) };
      for (const server of service.servers) {
        const entry = newServer(server.address, server.port, server.weight);
        this.#watchHealth(managed, entry, server.checkAddress ?? server.address);
        managed.servers.push(entry);
      }
      this.#services.set(service.name, managed);
    }
  }

  start(): void {
    this.#started = true;
    for (const service of this.#services.values()) for (const server of service.servers) server.health?.start();
    this.#timer = setInterval(() => this.tick(), TICK_MS);
    this.#timer.unref();
  }

  stop(): void {
    this.#started = false;
    clearInterval(this.#timer);
    for (const service of this.#services.values()) for (const server of service.servers) server.health?.stop();
  }

  /** The services as managed now (static servers as configured; agents' servers are not settings). */
  serviceSettings(): ServiceSettings[] {
    return [...this.#services.values()].map((service) => structuredClone(service.settings));
  }

  portSettings(): PortSettings[] {
    return this.#plane.portSettings();
  }

  /** Installs a new service in the data plane and manages its servers from now on. */
  addService(settings: ServiceSettings): void {
    if (this.#services.has(settings.name)) throw new Error(`service "${settings.name}" already exists`);
    this.#plane.addService(settings);
    const managed: ManagedService = { settings, definition: this.#definition(settings.name), servers: [], pushed: '' };
    for (const server of settings.servers) {
      const entry = newServer(server.address, server.port, server.weight);
      this.#watchHealth(managed, entry, server.checkAddress ?? server.address);
      if (this.#started) entry.health?.start();
      managed.servers.push(entry);
    }
    managed.pushed = poolKey(managed.definition.servers);
    this.#services.set(settings.name, managed);
  }

  /** Uninstalls a service: its servers' health checks and advertised flows go; its established
   * connections are kept or reset per its `onServerFailure` (Appliance.removeService). */
  removeService(name: string): void {
    const service = this.#service(name);
    for (const server of service.servers) {
      server.health?.stop();
      for (const key of server.advertised.splice(0)) this.#plane.removeAffinity(key);
    }
    this.#plane.removeService(name);
    this.#services.delete(name);
  }

  /** New settings for a running service: its static servers become the new list (a static server
   * left out is removed like an operator's removal: its flows kept or reset per `onServerFailure`;
   * servers agents registered stay), then algorithm, mode and pool go to the data plane at once. */
  updateService(settings: ServiceSettings): void {
    const service = this.#service(settings.name);
    const wanted = new Map(settings.servers.map((server) => [`${server.address}:${server.port}`, server]));
    for (const server of [...service.servers]) {
      if (!server.agentId && !wanted.has(`${server.address}:${server.port}`)) this.#remove(service, server, 'not in the service\'s new settings');
    }
    for (const configured of settings.servers) {
      const existing = findServer(service, configured);
      if (existing) {
        existing.configuredWeight = configured.weight;
        continue;
      }
      const entry = newServer(configured.address, configured.port, configured.weight);
      this.#watchHealth(service, entry, configured.checkAddress ?? configured.address);
      if (this.#started) entry.health?.start();
      service.servers.push(entry);
    }
    service.settings = settings;
    const weights = this.#effectiveWeights(service);
    const pool = service.servers.map((s, i) => ({ ip: s.address, port: s.port, weight: weights[i] ?? 0 }));
    this.#plane.updateService(settings, pool);
    service.definition = this.#definition(settings.name);
    service.pushed = poolKey(pool);
  }

  /** Every server of a service with the weight it has in the data plane now. */
  view(serviceName: string): ServerView[] {
    const service = this.#service(serviceName);
    const weights = this.#effectiveWeights(service);
    return service.servers.map((server, i) => ({
      address: server.address,
      port: server.port,
      origin: server.agentId ? 'agent' : 'static',
      ...(server.agentId ? { agentId: server.agentId } : {}),
      weight: weights[i] ?? 0,
      healthy: server.health?.healthy ?? true,
      draining: server.drainDeadline !== undefined,
      utilisation: utilisation(server.report, server.capacity),
      responseMs: server.responseMs,
    }));
  }

  register(agentId: string, registration: Registration): void {
    const service = this.#service(registration.service);
    const existing = findServer(service, registration);
    if (existing && !existing.agentId) {
      throw new RefusedMessage('static-server', `${describe(registration)} is configured statically; agents manage only servers they register`);
    }
    if (existing && existing.agentId !== agentId) {
      throw new RefusedMessage('not-yours', `${describe(registration)} belongs to agent "${existing.agentId}"`);
    }
    if (existing) {
      // A re-registration (agent restart) cancels a drain and refreshes the attributes.
      existing.capacity = registration.capacity;
      delete existing.drainDeadline;
      existing.lastReportAt = Date.now();
    } else {
      const server = newServer(registration.address, registration.port, 1);
      server.agentId = agentId;
      server.capacity = registration.capacity;
      this.#watchHealth(service, server, registration.checkAddress ?? registration.address);
      server.health?.start();
      service.servers.push(server);
    }
    this.#logger.info({ agent: agentId, ...registration }, 'server registered');
    this.#push(service);
  }

  report(agentId: string, report: LoadReport): void {
    const server = this.#agentServer(agentId, report);
    server.lastReportAt = Date.now();
    server.report = { connections: report.connections, cpu: report.cpu };
    if (this.#service(report.service).settings.algorithm === 'least-load') this.#push(this.#service(report.service));
  }

  /** Graceful de-registration (SR-R2): no new flows from now on, removal at the deadline. */
  deregister(agentId: string, ref: ServerRef, deadlineMs: number): number {
    const service = this.#service(ref.service);
    const server = this.#agentServer(agentId, ref);
    const allowed = Math.min(deadlineMs, service.settings.maxDrainMs);
    server.drainDeadline = Date.now() + allowed;
    server.lastReportAt = Date.now();
    this.#logger.info({ agent: agentId, ...ref, deadlineMs: allowed }, 'server draining');
    this.#push(service);
    return allowed;
  }

  /** A flow the server must keep (SR-R4): fixed affinities that override the service's selection. */
  advertiseFlow(agentId: string, advertisement: FlowAdvertisement): void {
    const service = this.#service(advertisement.service);
    const server = this.#agentServer(agentId, advertisement);
    const affinities = flowAffinities(service, server, advertisement.flow);
    for (const affinity of affinities) {
      this.#plane.addAffinity(affinity);
      server.advertised.push(affinity.key);
    }
    this.#logger.info({ agent: agentId, ...advertisement }, 'flow advertised');
  }

  /** An operator's weight for a server (the management API's drain, undrain and weight): 0 takes
   * it out of rotation; otherwise it replaces the configured weight (or an agent's capacity). */
  setOperatorWeight(ref: ServerRef, weight: number): void {
    const service = this.#service(ref.service);
    const server = findServer(service, ref);
    if (!server) throw new RefusedMessage('not-registered', `${describe(ref)} is not a server of the service`);
    server.operatorWeight = weight;
    this.#push(service);
  }

  /** A static server an operator adds (management API), health-checked like a configured one. */
  addStaticServer(ref: ServerRef, weight: number): void {
    const service = this.#service(ref.service);
    if (findServer(service, ref)) throw new RefusedMessage('static-server', `${describe(ref)} is already a server of the service`);
    const server = newServer(ref.address, ref.port, weight);
    this.#watchHealth(service, server, ref.address);
    service.servers.push(server);
    server.health?.start();
    this.#push(service);
  }

  /** Takes a server out of the pool now (management API); its established connections keep it. */
  removeServer(ref: ServerRef): void {
    const service = this.#service(ref.service);
    const server = findServer(service, ref);
    if (!server) throw new RefusedMessage('not-registered', `${describe(ref)} is not a server of the service`);
    this.#remove(service, server, 'removed by an operator');
    this.#push(service);
  }

  /** Health expiry, drain deadlines, silent agents, least-load weights; pushes what changed. */
  tick(now = Date.now()): void {
    const stats = this.#plane.stats();
    for (const service of this.#services.values()) {
      updateResponseTimes(service, stats);
      for (const server of [...service.servers]) {
        if (server.drainDeadline !== undefined && now >= server.drainDeadline) {
          this.#remove(service, server, 'drain deadline reached');
        } else if (server.agentId && server.drainDeadline === undefined && now - server.lastReportAt > this.#silenceMs) {
          // A draining server's agent may well have exited; its deadline alone decides.
          this.#remove(service, server, `agent "${server.agentId}" silent for ${now - server.lastReportAt} ms`);
        }
      }
      this.#push(service);
    }
  }

  #definition(name: string): ServiceDefinition {
    const installed = this.#plane.services().find((service) => service.name === name);
    if (!installed) throw new Error(`service "${name}" is not installed in the data plane`);
    return installed.definition;
  }

  #service(name: string): ManagedService {
    const service = this.#services.get(name);
    if (!service) throw new RefusedMessage('unknown-service', `service "${name}" does not exist`);
    return service;
  }

  #agentServer(agentId: string, ref: ServerRef): ManagedServer {
    const server = findServer(this.#service(ref.service), ref);
    if (!server || !server.agentId) throw new RefusedMessage('not-registered', `${describe(ref)} is not registered`);
    if (server.agentId !== agentId) throw new RefusedMessage('not-yours', `${describe(ref)} belongs to agent "${server.agentId}"`);
    return server;
  }

  #watchHealth(service: ManagedService, server: ManagedServer, checkAddress: string): void {
    const check = service.settings.healthCheck;
    if (!check) return;
    const port = check.port ?? (server.port || service.settings.port);
    server.health = new HealthChecker({ address: checkAddress, port }, check, (healthy, detail) => {
      this.#logger.warn({ service: service.settings.name, server: `${server.address}:${server.port}`, healthy, detail }, healthy ? 'server back in rotation' : 'server failed its health check');
      if (!healthy && service.settings.onServerFailure === 'reset') this.#resetFlows(service, server);
      this.#push(service);
    });
  }

  #remove(service: ManagedService, server: ManagedServer, why: string): void {
    server.health?.stop();
    service.servers.splice(service.servers.indexOf(server), 1);
    for (const key of server.advertised) this.#plane.removeAffinity(key);
    if (service.settings.onServerFailure === 'reset') this.#resetFlows(service, server);
    this.#logger.warn({ service: service.settings.name, server: `${server.address}:${server.port}`, why }, 'server removed');
  }

  /** Ends a failed server's connections: its advertised flows go, and the data plane forgets every
   * connection pinned to it (a client's next SYN picks a live server). Call before the pool
   * without it is pushed: the data plane finds the server by its slot in the current pool. */
  #resetFlows(service: ManagedService, server: ManagedServer): void {
    for (const key of server.advertised.splice(0)) this.#plane.removeAffinity(key);
    this.#plane.flushServer(service.settings.name, { ip: server.address, port: server.port });
    this.#logger.warn({ service: service.settings.name, server: `${server.address}:${server.port}` }, 'established flows reset');
  }

  #effectiveWeights(service: ManagedService): number[] {
    const inRotation = service.servers.map((s) => s.drainDeadline === undefined && (s.health?.healthy ?? true) && s.operatorWeight !== 0);
    if (service.settings.algorithm !== 'least-load') {
      return service.servers.map((s, i) => (inRotation[i] ? (s.operatorWeight ?? s.configuredWeight) : 0));
    }
    return leastLoadWeights(
      service.servers.map((s, i) => ({
        base: inRotation[i] ? (s.operatorWeight ?? s.capacity ?? s.configuredWeight) : 0,
        utilisation: utilisation(s.report, s.capacity),
        responseMs: s.responseMs,
      })),
    );
  }

  #push(service: ManagedService): void {
    const weights = this.#effectiveWeights(service);
    const pool = service.servers.map((s, i) => ({ ip: s.address, port: s.port, weight: weights[i] ?? 0 }));
    const key = poolKey(pool);
    if (key === service.pushed) return;
    this.#plane.replaceServers(service.settings.name, pool);
    service.pushed = key;
    this.#logger.info({ service: service.settings.name, pool }, 'server pool updated');
  }
}

function newServer(address: string, port: number, configuredWeight: number): ManagedServer {
  return { address, port, configuredWeight, lastReportAt: Date.now(), advertised: [], handshakes: 0, handshakeMicros: 0, responseMs: 0 };
}

function findServer(service: ManagedService, ref: { address: string; port: number }): ManagedServer | undefined {
  return service.servers.find((s) => s.address === ref.address && s.port === ref.port);
}

function describe(ref: ServerRef): string {
  return `server ${ref.address}:${ref.port} of service "${ref.service}"`;
}

function poolKey(servers: readonly ServiceServer[]): string {
  return servers.map((s) => `${s.ip}:${s.port}=${s.weight}`).join(',');
}

/** Mean SYN -> SYN-ACK time per server over the last tick; kept when no handshake happened. */
function updateResponseTimes(service: ManagedService, stats: DataplaneStats): void {
  for (const row of stats.servers) {
    if (row.serviceId !== service.definition.id) continue;
    const server = findServer(service, { address: row.ip, port: row.port });
    if (!server) continue;
    const handshakes = row.handshakes - server.handshakes;
    if (handshakes > 0) server.responseMs = (row.handshakeMicros - server.handshakeMicros) / handshakes / 1000;
    server.handshakes = row.handshakes;
    server.handshakeMicros = row.handshakeMicros;
  }
}

/** The fixed affinities that send one advertised flow to its server, both ways where NAT needs it. */
function flowAffinities(service: ManagedService, server: ManagedServer, flow: FlowAdvertisement['flow']): FixedAffinity[] {
  const { vip, port: servicePort, mode = 'nat', guePort, qosToServer, qosToClient } = service.definition;
  const toServerQos = qosToServer ? { qos: qosToServer } : {};
  const dstPort = servicePort || flow.dstPort;
  if (dstPort === 0) throw new RefusedMessage('unsupported', `service "${service.settings.name}" listens on every port: the flow needs dstPort`);
  const toService: FlowKey = { protocol: flow.protocol, srcIp: flow.srcIp, srcPort: flow.srcPort, dstIp: vip, dstPort };
  const ttlSeconds = flow.ttlSeconds;
  if (mode === 'nat') {
    const serverPort = server.port || dstPort;
    return [
      { key: toService, action: { type: 'forward', nat: { dstIp: server.address, dstPort: serverPort }, ...toServerQos }, ttlSeconds },
      {
        key: { protocol: flow.protocol, srcIp: server.address, srcPort: serverPort, dstIp: flow.srcIp, dstPort: flow.srcPort },
        action: { type: 'forward', nat: { srcIp: vip, srcPort: dstPort }, ...(qosToClient ? { qos: qosToClient } : {}) },
        ttlSeconds,
      },
    ];
  }
  if (mode === 'fullnat') {
    throw new RefusedMessage('unsupported', 'flow advertisements are not supported in fullnat mode (the source port comes from the data plane\'s pool)');
  }
  const dispatch = mode === 'dsr' ? { mode: 'mac' as const, forwardIp: server.address } : { mode, forwardIp: server.address, ...(guePort ? { guePort } : {}) };
  return [{ key: toService, action: { type: 'forward', dispatch, ...toServerQos }, ttlSeconds }];
}
