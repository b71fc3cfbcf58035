/* The Dataplane: a typed wrapper over the native addon (firmware/native). One per process: DPDK's
 * EAL can be initialised once. Calls are synchronous and cheap; the packet path never calls back
 * into JavaScript, punted packets are fetched in batches by a timer. */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import {
  checkPort,
  decodeFlowKey,
  encodeFlowKey,
  bufferToIpv6,
  familyOf,
  formatMac,
  ipv4ToNumber,
  ipv6ToBuffer,
  numberToIpv4,
  parseMac,
  protocolName,
  protocolNumber,
} from './addressing.js';
import { fromNative, InvalidRuleError, StateError } from './errors.js';
import type {
  Action,
  DataplaneOptions,
  DataplaneStats,
  EalOptions,
  FixedAffinity,
  FlowKey,
  ForwardIpCounters,
  ForwardingMode,
  InstalledAffinity,
  InterestCriteria,
  MissPolicy,
  PortConfig,
  PortInfo,
  PuntedPacket,
  QosAction,
  SeqAdjust,
  ServiceDefinition,
  TcpTimeouts,
  UnitEntry,
  ArpAnswer,
  WildcardAffinity,
} from './dataplane-types.js';

export * from './dataplane-types.js';
export * from './errors.js';

const here = path.dirname(fileURLToPath(import.meta.url));

interface NativeAction {
  type: number;
  outPort: number;
  nextHopMac?: Buffer;
  natSrcIp: number;
  natSrcPort: number;
  natDstIp: number;
  natDstPort: number;
  dispatch: number;
  forwardIp: number;
  serviceId: number;
  guePort: number;
  qos?: QosAction;
}

interface AffinityExtras {
  interest?: InterestCriteria;
  statsIp?: number;
  /** An IPv6 key's new addresses (the action's IPv4 NAT addresses stay 0). */
  nat6Src?: Buffer;
  nat6Dst?: Buffer;
}

interface NativeAffinity {
  key: Buffer;
  action: NativeAction;
  ttlSeconds: number;
  seqAdjust?: SeqAdjust;
  interest?: InterestCriteria;
  statsIp?: number;
  nat6Src?: Buffer;
  nat6Dst?: Buffer;
  packets: number;
  bytes: number;
  origin: number;
  tcpState: number;
}

interface NativeAddon {
  ealInit(args: string[]): void;
  create(opts: {
    affinityCapacity: number;
    flowCapacityPerWorker: number;
    missPolicy: number;
    timeouts: number[];
    mbufsPerWorker: number;
    holdCapacityPerWorker: number;
    holdTimeoutMs: number;
  }): void;
  portCount(): number;
  portInfo(id: number): Omit<PortInfo, 'mac'> & { mac: Buffer };
  portConfigure(id: number, cfg: { address: number; prefixLength: number; promiscuous: boolean }): void;
  localAddressAdd(port: number, ip: number): void;
  localAddressRemove(port: number, ip: number): void;
  routeAdd(prefix: number, length: number, port: number, gateway: number): void;
  routeRemove(prefix: number, length: number): void;
  neighborSet(ip: number, port: number, mac: Buffer): void;
  resolve(ip: number): void;
  portConfigure6(id: number, address: Buffer, prefixLength: number): void;
  localAddress6Add(port: number, ip: Buffer): void;
  localAddress6Remove(port: number, ip: Buffer): void;
  route6Add(prefix: Buffer, length: number, port: number, gateway: Buffer): void;
  route6Remove(prefix: Buffer, length: number): void;
  neighbor6Set(ip: Buffer, port: number, mac: Buffer): void;
  resolve6(ip: Buffer): void;
  start(): void;
  stop(): void;
  shutdown(): void;
  affinityAdd(key: Buffer, action: NativeAction, ttlSeconds: number, seq?: SeqAdjust, extras?: AffinityExtras): void;
  affinityRemove(key: Buffer): boolean;
  affinityList(max: number, includeLearned: boolean): NativeAffinity[];
  affinityCount(): { manager: number; learned: number };
  forwardIpCounters(): { ip: number; packets: number; bytes: number }[];
  wildcardsCommit(rules: object[]): void;
  serviceSet(svc: object): void;
  serviceRemove(id: number): void;
  serviceFlushServer(id: number, ip: number, port: number): void;
  serviceFlushServer6(id: number, ip: Buffer, port: number): void;
  flowForget(key: Buffer): void;
  stats(): DataplaneStats;
  poll(max: number): { port: number; reason: number; unit: number; interestFlags: number; interestReasons: number; wildcardId: number; frame: Buffer }[];
  inject(port: number, frame: Buffer): void;
  injectProcess(port: number, frame: Buffer, afterWildcardId?: number): void;
  workUnitsSet(states: Buffer, forwarding?: Buffer): void;
  localAddressArp(port: number, ip: number, answer: number, mac?: Buffer): void;
  localAddress6Ndp(port: number, ip: Buffer, answer: number, mac?: Buffer): void;
  portOwnMacOnly(port: number, on: boolean): void;
  workUnit(clientIp: number, clientPort: number): number;
  workUnit6(clientIp: Buffer, clientPort: number): number;
  replicationEnable(on: boolean): void;
  flowEvents(max: number): Buffer;
  flowImport(records: Buffer): number;
  flowEventsLost(): number;
  unitLoads(): { packets: Float64Array; flows: Float64Array };
  readonly flowRecordSize: number;
  readonly workUnits: number;
  readonly maxUnitPeers: number;
  readonly maxPorts: number;
  sdNotify(socketPath: string, state: string): number;
}

export function loadAddon(): NativeAddon {
  const require = createRequire(import.meta.url);
  const candidates = [
    path.join(here, 'native/build/Release/edgeplane.node'),
    path.join(here, '../../firmware/native/build/Release/edgeplane.node'),
  ];
  let lastError: unknown;
  for (const candidate of candidates) {
    try {
      return require(candidate) as NativeAddon;
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error(`native addon not built (run "npm run build:native"): ${String(lastError)}`);
}

function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fromNative(err);
  }
}

const ACTION_TYPES = { forward: 1, drop: 2, punt: 3, service: 4 } as const;
const ACTION_NAMES = ['', 'forward', 'drop', 'punt', 'service'] as const;
const DISPATCH_MODES = { mac: 1, ipip: 2, gre: 3, gue: 4 } as const;
const DISPATCH_NAMES = ['', 'mac', 'ipip', 'gre', 'gue'] as const;
const SERVICE_MODES = { nat: 0, fullnat: 1, dsr: 2, ipip: 3, gre: 4, gue: 5 } as const;
const ALGORITHMS = { maglev: 0, wrr: 1 } as const;
export const DEFAULT_GUE_PORT = 6080;
const MISS_POLICIES: Record<MissPolicy, number> = { drop: 0, punt: 1, route: 2 };
const TCP_STATES = ['none', 'syn', 'established', 'fin', 'rst'] as const;
export const ROUTE_PORT = 0xffff;
const PUNT_REASONS = ['action', 'miss', 'held', 'interest'] as const;
const INTEREST_FLAGS = { packet: 0x01, copy: 0x02, held: 0x04, fixed: 0x08 } as const;
const UNIT_STATES = { owned: 0, foreign: 1, hold: 2, forward: 3 } as const;
const ARP_ANSWERS = { 'port-mac': 0, shared: 1, silent: 2 } as const;
const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;

function macBytes(mac: string, what: string): Buffer {
  if (!MAC.test(mac)) throw new InvalidRuleError('EINVAL', `${what} "${mac}" is not a MAC address like 02:65:70:00:01:64`);
  return Buffer.from(mac.split(':').map((part) => Number.parseInt(part, 16)));
}

const defaultTimeouts: TcpTimeouts = {
  synSeconds: 10,
  establishedSeconds: 300,
  finSeconds: 30,
  rstSeconds: 5,
  udpSeconds: 60,
  otherSeconds: 30,
};

function optionalIp(ip: string | undefined, what: string): number {
  return ip === undefined ? 0 : ipv4ToNumber(ip, what);
}

const NO_IPV6 = Buffer.alloc(16);

/** The IPv6 wildcard fields (family 6) when the rule's addresses are IPv6, checking all four agree. */
function wildcardFamilyFields(rule: WildcardAffinity, where: string): { family: 4 } | { family: 6; srcIp6: Buffer; srcMask6: Buffer; dstIp6: Buffer; dstMask6: Buffer } {
  const fields = ['srcIp', 'srcMask', 'dstIp', 'dstMask'] as const;
  const families = fields.map((f) => familyOf(rule[f], `${where}.${f}`));
  if (families.every((f) => f === 4)) return { family: 4 };
  if (!families.every((f) => f === 6)) {
    throw new InvalidRuleError('EINVAL', `${where}: srcIp, srcMask, dstIp and dstMask must all be IPv4 or all IPv6`);
  }
  return {
    family: 6,
    srcIp6: ipv6ToBuffer(rule.srcIp, `${where}.srcIp`),
    srcMask6: ipv6ToBuffer(rule.srcMask, `${where}.srcMask`),
    dstIp6: ipv6ToBuffer(rule.dstIp, `${where}.dstIp`),
    dstMask6: ipv6ToBuffer(rule.dstMask, `${where}.dstMask`),
  };
}

function encodeAction(action: Action, where: string): NativeAction {
  const native: NativeAction = {
    type: ACTION_TYPES[action.type],
    outPort: ROUTE_PORT,
    natSrcIp: 0,
    natSrcPort: 0,
    natDstIp: 0,
    natDstPort: 0,
    dispatch: 0,
    forwardIp: 0,
    serviceId: 0,
    guePort: 0,
  };
  if (native.type === undefined) throw new InvalidRuleError('EINVAL', `${where}.type "${(action as Action).type}" is unknown`);
  if (action.type === 'service') {
    native.serviceId = action.serviceId;
  } else if (action.type === 'forward') {
    if (action.port !== undefined) native.outPort = checkPort(action.port, `${where}.port`);
    if (action.nextHopMac !== undefined) {
      if (action.port === undefined) throw new InvalidRuleError('EINVAL', `${where}.nextHopMac needs ${where}.port`);
      native.nextHopMac = parseMac(action.nextHopMac, `${where}.nextHopMac`);
    }
    if (action.nat) {
      native.natSrcIp = optionalIp(action.nat.srcIp, `${where}.nat.srcIp`);
      native.natDstIp = optionalIp(action.nat.dstIp, `${where}.nat.dstIp`);
      native.natSrcPort = checkPort(action.nat.srcPort ?? 0, `${where}.nat.srcPort`);
      native.natDstPort = checkPort(action.nat.dstPort ?? 0, `${where}.nat.dstPort`);
    }
    if (action.dispatch) {
      native.dispatch = DISPATCH_MODES[action.dispatch.mode];
      if (native.dispatch === undefined) {
        throw new InvalidRuleError('EINVAL', `${where}.dispatch.mode "${action.dispatch.mode}" is not mac, ipip, gre or gue`);
      }
      native.forwardIp = ipv4ToNumber(action.dispatch.forwardIp, `${where}.dispatch.forwardIp`);
      if (action.dispatch.mode === 'gue') {
        native.guePort = checkPort(action.dispatch.guePort ?? DEFAULT_GUE_PORT, `${where}.dispatch.guePort`);
      }
    }
    if (action.qos) native.qos = checkQos(action.qos, `${where}.qos`);
  }
  return native;
}

function checkInterest(interest: InterestCriteria, where: string): InterestCriteria {
  for (const field of ['mask', 'data', 'copy', 'hold'] as const) {
    const value = interest[field];
    if (!Number.isInteger(value) || value < 0 || value > 0xffff) {
      throw new InvalidRuleError('EINVAL', `${where}.${field} ${String(value)} is not a 16-bit set of interest bits`);
    }
  }
  return { mask: interest.mask, data: interest.data, copy: interest.copy, hold: interest.hold };
}

function checkQos(qos: QosAction, where: string): QosAction {
  const ranges: [keyof QosAction, number][] = [
    ['dscp', 63],
    ['pcp', 7],
    ['vlanPush', 0xffff],
    ['mplsPush', 0xfffff],
  ];
  for (const [field, max] of ranges) {
    const value = qos[field];
    if (value !== undefined && (!Number.isInteger(value) || (value as number) < 0 || (value as number) > max)) {
      throw new InvalidRuleError('EINVAL', `${where}.${field} ${String(value)} is not an integer 0-${max}`);
    }
  }
  return qos;
}

/** An IPv6 affinity's translated addresses, listed beside its action, put back into it. */
function withNat6(action: Action, nat6Src: Buffer | undefined, nat6Dst: Buffer | undefined): Action {
  if (action.type !== 'forward' || (!nat6Src && !nat6Dst)) return action;
  return {
    ...action,
    nat: { ...action.nat, ...(nat6Src ? { srcIp: bufferToIpv6(nat6Src) } : {}), ...(nat6Dst ? { dstIp: bufferToIpv6(nat6Dst) } : {}) },
  };
}

function decodeAction(native: NativeAction): Action {
  const type = ACTION_NAMES[native.type];
  if (type === 'service') return { type, serviceId: native.serviceId };
  if (type !== 'forward') return { type: type === 'punt' ? 'punt' : 'drop' };
  const action: Extract<Action, { type: 'forward' }> = { type: 'forward' };
  if (native.outPort !== ROUTE_PORT) action.port = native.outPort;
  if (native.nextHopMac) action.nextHopMac = formatMac(native.nextHopMac);
  if (native.natSrcIp || native.natSrcPort || native.natDstIp || native.natDstPort) {
    action.nat = {};
    if (native.natSrcIp) action.nat.srcIp = numberToIpv4(native.natSrcIp);
    if (native.natSrcPort) action.nat.srcPort = native.natSrcPort;
    if (native.natDstIp) action.nat.dstIp = numberToIpv4(native.natDstIp);
    if (native.natDstPort) action.nat.dstPort = native.natDstPort;
  }
  const mode = DISPATCH_NAMES[native.dispatch];
  if (mode) {
    action.dispatch = { mode, forwardIp: numberToIpv4(native.forwardIp) };
    if (mode === 'gue') action.dispatch.guePort = native.guePort;
  }
  if (native.qos && Object.keys(native.qos).length > 0) action.qos = native.qos;
  return action;
}

export function ealArguments(eal: EalOptions): string[] {
  if (eal.lcores.length < 2) throw new InvalidRuleError('EINVAL', 'eal.lcores needs a main lcore and at least one worker');
  const args = ['edgeplane', '-l', eal.lcores.join(','), '--main-lcore', String(eal.lcores[0]), '--no-telemetry'];
  args.push('-m', String(eal.memoryMb), `--file-prefix=${eal.filePrefix}`);
  if (eal.noHuge) args.push('--no-huge');
  if (eal.inMemory) args.push('--in-memory');
  for (const vdev of eal.vdevs ?? []) args.push(`--vdev=${vdev}`);
  if (eal.allowPci?.length) for (const dev of eal.allowPci) args.push('-a', dev);
  else if (eal.vdevs?.length) args.push('--no-pci');
  args.push(`--log-level=${eal.logLevel ?? 'notice'}`);
  args.push(...(eal.extraArgs ?? []));
  return args;
}

export class Dataplane {
  #addon: NativeAddon;
  #state: 'configured' | 'running' | 'stopped' | 'closed' = 'configured';
  #pollTimer: NodeJS.Timeout | undefined;
  #puntHandler: ((pkt: PuntedPacket) => void) | undefined;

  private constructor(addon: NativeAddon) {
    this.#addon = addon;
  }

  /** Starts the EAL and allocates tables and pools. Ports are probed but not started. */
  static init(eal: EalOptions, options: DataplaneOptions = {}): Dataplane {
    const addon = loadAddon();
    const args = ealArguments(eal);
    call(() => addon.ealInit(args));
    const timeouts = { ...defaultTimeouts, ...options.timeouts };
    call(() =>
      addon.create({
        affinityCapacity: options.affinityCapacity ?? 1 << 16,
        flowCapacityPerWorker: options.flowCapacityPerWorker ?? 1 << 18,
        missPolicy: MISS_POLICIES[options.missPolicy ?? 'drop'],
        timeouts: [
          timeouts.synSeconds,
          timeouts.establishedSeconds,
          timeouts.finSeconds,
          timeouts.rstSeconds,
          timeouts.udpSeconds,
          timeouts.otherSeconds,
        ],
        mbufsPerWorker: options.mbufsPerWorker ?? 8192,
        holdCapacityPerWorker: options.hold?.capacityPerWorker ?? 0,
        holdTimeoutMs: options.hold?.timeoutMs ?? 0,
      }),
    );
    return new Dataplane(addon);
  }

  get state(): string {
    return this.#state;
  }

  ports(): PortInfo[] {
    const count = this.#addon.portCount();
    return Array.from({ length: count }, (_, id) => {
      const info = call(() => this.#addon.portInfo(id));
      return { ...info, mac: formatMac(info.mac) };
    });
  }

  configurePort(id: number, config: PortConfig): void {
    const address = config.address === undefined ? 0 : ipv4ToNumber(config.address, 'port address');
    const address6 = config.address6 === undefined ? undefined : ipv6ToBuffer(config.address6, 'port address6');
    call(() =>
      this.#addon.portConfigure(id, {
        address,
        prefixLength: config.prefixLength ?? 24,
        promiscuous: config.promiscuous ?? true,
      }),
    );
    if (address6) call(() => this.#addon.portConfigure6(id, address6, config.prefixLength6 ?? 64));
  }

  /** An address the unit answers ARP (IPv6: neighbour solicitations) and ping for on a port (its
   * own, or a virtual address). */
  addLocalAddress(port: number, ip: string): void {
    if (familyOf(ip, 'local address') === 6) call(() => this.#addon.localAddress6Add(port, ipv6ToBuffer(ip)));
    else call(() => this.#addon.localAddressAdd(port, ipv4ToNumber(ip, 'local address')));
  }

  removeLocalAddress(port: number, ip: string): void {
    if (familyOf(ip, 'local address') === 6) call(() => this.#addon.localAddress6Remove(port, ipv6ToBuffer(ip)));
    else call(() => this.#addon.localAddressRemove(port, ipv4ToNumber(ip, 'local address')));
  }

  /** A route of either family; the gateway (omitted: directly connected) must be of the prefix's. */
  addRoute(prefix: string, length: number, port: number, gateway?: string): void {
    if (familyOf(prefix, 'route prefix') === 6) {
      if (gateway !== undefined && familyOf(gateway, 'route gateway') !== 6) {
        throw new InvalidRuleError('EINVAL', `route gateway "${gateway}" is not IPv6 like the prefix "${prefix}"`);
      }
      const via = gateway === undefined ? NO_IPV6 : ipv6ToBuffer(gateway, 'route gateway');
      call(() => this.#addon.route6Add(ipv6ToBuffer(prefix, 'route prefix'), length, port, via));
      return;
    }
    call(() =>
      this.#addon.routeAdd(ipv4ToNumber(prefix, 'route prefix'), length, port, optionalIp(gateway, 'route gateway')),
    );
  }

  removeRoute(prefix: string, length: number): void {
    if (familyOf(prefix, 'route prefix') === 6) call(() => this.#addon.route6Remove(ipv6ToBuffer(prefix), length));
    else call(() => this.#addon.routeRemove(ipv4ToNumber(prefix, 'route prefix'), length));
  }

  setNeighbor(ip: string, port: number, mac: string): void {
    if (familyOf(ip, 'neighbor') === 6) call(() => this.#addon.neighbor6Set(ipv6ToBuffer(ip), port, parseMac(mac)));
    else call(() => this.#addon.neighborSet(ipv4ToNumber(ip, 'neighbor'), port, parseMac(mac)));
  }

  /** Sends an ARP request (IPv6: a neighbour solicitation) for ip on the port its route points at;
   * the answer fills the neighbour table. */
  resolve(ip: string): void {
    if (familyOf(ip, 'address to resolve') === 6) call(() => this.#addon.resolve6(ipv6ToBuffer(ip)));
    else call(() => this.#addon.resolve(ipv4ToNumber(ip, 'address to resolve')));
  }

  start(): void {
    if (this.#state === 'running') throw new StateError('ESTATE', 'data plane is already running');
    call(() => this.#addon.start());
    this.#state = 'running';
    this.#pollTimer = setInterval(() => this.#drain(), 5);
    this.#pollTimer.unref();
  }

  stop(): void {
    if (this.#state !== 'running') return;
    clearInterval(this.#pollTimer);
    this.#drain();
    call(() => this.#addon.stop());
    this.#state = 'stopped';
  }

  /** Stops everything and releases DPDK (rte_eal_cleanup). The process cannot start another. */
  close(): void {
    if (this.#state === 'closed') return;
    this.stop();
    call(() => this.#addon.shutdown());
    this.#state = 'closed';
  }

  addAffinity(affinity: FixedAffinity): void {
    const key = encodeFlowKey(affinity.key);
    if (affinity.ttlSeconds === 0) {
      this.removeAffinity(affinity.key);
      return;
    }
    if (!Number.isInteger(affinity.ttlSeconds) || affinity.ttlSeconds < 0) {
      throw new InvalidRuleError('EINVAL', `ttlSeconds ${affinity.ttlSeconds} is not a whole number of seconds`);
    }
    if (affinity.action.type === 'service') {
      throw new InvalidRuleError('EINVAL', 'a fixed affinity cannot have a service action (wildcards only)');
    }
    const extras: AffinityExtras = {};
    let actionToEncode = affinity.action;
    if (affinity.action.type === 'forward' && affinity.action.nat && familyOf(affinity.key.srcIp, 'key.srcIp') === 6) {
      // IPv6 addresses do not fit the action: they travel beside it.
      const { srcIp, dstIp, ...ports } = affinity.action.nat;
      if (srcIp !== undefined) extras.nat6Src = ipv6ToBuffer(srcIp, 'action.nat.srcIp (IPv6 key)');
      if (dstIp !== undefined) extras.nat6Dst = ipv6ToBuffer(dstIp, 'action.nat.dstIp (IPv6 key)');
      actionToEncode = { ...affinity.action, nat: ports };
    }
    const action = encodeAction(actionToEncode, 'action');
    const seq = affinity.seqAdjust;
    if (seq) {
      for (const field of ['seqDelta', 'initialSeq', 'ackDelta', 'initialAck'] as const) {
        const value = seq[field];
        if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
          throw new InvalidRuleError('EINVAL', `seqAdjust.${field} ${value} is not a 32-bit unsigned integer`);
        }
      }
    }
    if (affinity.interest) extras.interest = checkInterest(affinity.interest, 'interest');
    if (affinity.statsIp !== undefined) extras.statsIp = ipv4ToNumber(affinity.statsIp, 'statsIp');
    call(() => this.#addon.affinityAdd(key, action, affinity.ttlSeconds, seq, extras));
  }

  /** Packets and bytes per forward IP of the affinities installed with `statsIp` (SMFA-R11). */
  forwardIpCounters(): ForwardIpCounters[] {
    return this.#addon.forwardIpCounters().map((row) => ({ ...row, ip: numberToIpv4(row.ip) }));
  }

  /** Returns whether an affinity was removed. */
  removeAffinity(key: FlowKey): boolean {
    return call(() => this.#addon.affinityRemove(encodeFlowKey(key)));
  }

  listAffinities(options: { max?: number; includeLearned?: boolean } = {}): InstalledAffinity[] {
    const rows = call(() => this.#addon.affinityList(options.max ?? 10_000, options.includeLearned ?? true));
    return rows.map((row) => ({
      key: decodeFlowKey(row.key),
      action: withNat6(decodeAction(row.action), row.nat6Src, row.nat6Dst),
      ttlSeconds: row.ttlSeconds,
      ...(row.seqAdjust ? { seqAdjust: row.seqAdjust } : {}),
      ...(row.interest ? { interest: row.interest } : {}),
      ...(row.statsIp ? { statsIp: numberToIpv4(row.statsIp) } : {}),
      packets: row.packets,
      bytes: row.bytes,
      origin: row.origin === 0 ? 'manager' : 'learned',
      tcpState: TCP_STATES[row.tcpState] ?? 'none',
    }));
  }

  affinityCount(): { manager: number; learned: number } {
    return this.#addon.affinityCount();
  }

  /** Replaces the whole wildcard set atomically: workers see the old set or the new one. */
  setWildcards(rules: WildcardAffinity[]): void {
    const native = rules.map((rule, i) => {
      const where = `wildcards[${i}]`;
      const family = wildcardFamilyFields(rule, where);
      const v4 = family.family === 4;
      return {
        ...family,
        protocol: rule.protocol === 'any' ? 0 : protocolNumber(rule.protocol, `${where}.protocol`),
        srcIp: v4 ? ipv4ToNumber(rule.srcIp, `${where}.srcIp`) : 0,
        srcMask: v4 ? ipv4ToNumber(rule.srcMask, `${where}.srcMask`) : 0,
        dstIp: v4 ? ipv4ToNumber(rule.dstIp, `${where}.dstIp`) : 0,
        dstMask: v4 ? ipv4ToNumber(rule.dstMask, `${where}.dstMask`) : 0,
        srcPort: checkPort(rule.srcPort, `${where}.srcPort`),
        dstPort: checkPort(rule.dstPort, `${where}.dstPort`),
        precedence: rule.precedence,
        id: rule.id ?? 0,
        action: encodeAction(rule.action, `${where}.action`),
        ...(rule.interest ? { interest: checkInterest(rule.interest, `${where}.interest`) } : {}),
        cascade: rule.cascade ?? false,
      };
    });
    call(() => this.#addon.wildcardsCommit(native));
  }

  /** Installs or replaces a virtual service's server pool; established flows keep their server. */
  setService(service: ServiceDefinition): void {
    const v6 = familyOf(service.vip, 'vip') === 6;
    const servers = service.servers.map((server, i) => {
      const where = `servers[${i}].ip`;
      if (familyOf(server.ip, where) !== (v6 ? 6 : 4)) {
        throw new InvalidRuleError('EINVAL', `${where} "${server.ip}" is not ${v6 ? 'IPv6' : 'IPv4'} like the vip "${service.vip}"`);
      }
      return {
        ip: v6 ? 0 : ipv4ToNumber(server.ip, where),
        ...(v6 ? { ip6: ipv6ToBuffer(server.ip, where) } : {}),
        port: checkPort(server.port, `servers[${i}].port`),
        weight: server.weight,
      };
    });
    const mode = SERVICE_MODES[service.mode ?? 'nat'];
    if (mode === undefined) throw new InvalidRuleError('EINVAL', `mode "${service.mode}" is not nat, fullnat, dsr, ipip, gre or gue`);
    if (service.snat && familyOf(service.snat.ip, 'snat.ip') !== (v6 ? 6 : 4)) {
      throw new InvalidRuleError('EINVAL', `snat.ip "${service.snat.ip}" is not ${v6 ? 'IPv6' : 'IPv4'} like the vip "${service.vip}"`);
    }
    const algorithm = ALGORITHMS[service.algorithm ?? 'maglev'];
    if (algorithm === undefined) throw new InvalidRuleError('EINVAL', `algorithm "${service.algorithm}" is not maglev or wrr`);
    call(() =>
      this.#addon.serviceSet({
        id: service.id,
        family: v6 ? 6 : 4,
        vip: v6 ? 0 : ipv4ToNumber(service.vip, 'vip'),
        ...(v6 ? { vip6: ipv6ToBuffer(service.vip, 'vip') } : {}),
        port: checkPort(service.port, 'port'),
        protocol: protocolNumber(service.protocol),
        tableSize: service.tableSize ?? 65537,
        mode,
        algorithm,
        snatIp: service.snat && !v6 ? ipv4ToNumber(service.snat.ip, 'snat.ip') : 0,
        ...(service.snat && v6 ? { snatIp6: ipv6ToBuffer(service.snat.ip, 'snat.ip') } : {}),
        snatPortMin: service.snat ? checkPort(service.snat.portMin, 'snat.portMin') : 0,
        snatPortMax: service.snat ? checkPort(service.snat.portMax, 'snat.portMax') : 0,
        guePort: checkPort(service.guePort ?? DEFAULT_GUE_PORT, 'guePort'),
        ...(service.qosToServer ? { qosToServer: checkQos(service.qosToServer, 'qosToServer') } : {}),
        ...(service.qosToClient ? { qosToClient: checkQos(service.qosToClient, 'qosToClient') } : {}),
        servers,
      }),
    );
  }

  removeService(id: number): void {
    call(() => this.#addon.serviceRemove(id));
  }

  /** Forgets every connection pinned to one server of a service ("reset on failure"): their next
   * packets are dropped, a new TCP SYN from the same client port picks a server again. */
  flushServer(serviceId: number, ip: string, port: number): void {
    if (familyOf(ip, 'server ip') === 6) {
      call(() => this.#addon.serviceFlushServer6(serviceId, ipv6ToBuffer(ip, 'server ip'), checkPort(port, 'server port')));
      return;
    }
    call(() => this.#addon.serviceFlushServer(serviceId, ipv4ToNumber(ip, 'server ip'), checkPort(port, 'server port')));
  }

  /** Forgets one learned connection, both directions, by either direction's key (within a worker loop). */
  forgetFlow(key: FlowKey): void {
    call(() => this.#addon.flowForget(encodeFlowKey(key)));
  }

  stats(): DataplaneStats {
    const stats = call(() => this.#addon.stats());
    return {
      ...stats,
      servers: stats.servers.map(({ ip6, ...s }: (typeof stats.servers)[number] & { ip6?: Buffer }) => ({
        ...s,
        ip: ip6 ? bufferToIpv6(ip6) : numberToIpv4(s.ip as unknown as number),
      })),
    };
  }

  /** Packets the data plane sends up (punt actions, miss policy "punt"). */
  onPunt(handler: (pkt: PuntedPacket) => void): void {
    this.#puntHandler = handler;
  }

  /** Sends a frame out of a port as is. */
  inject(port: number, frame: Buffer): void {
    call(() => this.#addon.inject(port, frame));
  }

  /** Runs a frame through the pipeline as if it had arrived on `port` (affinities, NAT, routing
   * apply). It is never punted again: a punt decision drops it, counted as `punt_loop`.
   * With `afterWildcard` (an IPv4 packet the manager of that cascading wildcard returned), it goes on
   * after that rule instead: the rules below it may still send it up to their managers (SMFA-R18). */
  injectForProcessing(port: number, frame: Buffer, afterWildcard?: number): void {
    call(() => this.#addon.injectProcess(port, frame, afterWildcard));
  }

  #drain(): void {
    for (;;) {
      const packets = this.#addon.poll(256);
      for (const pkt of packets) {
        const punted: PuntedPacket = { port: pkt.port, frame: pkt.frame, reason: PUNT_REASONS[pkt.reason] ?? 'action', unit: pkt.unit, wildcardId: pkt.wildcardId };
        if (punted.reason === 'interest') {
          const flags = pkt.interestFlags;
          punted.interest = {
            reasons: pkt.interestReasons,
            packet: (flags & INTEREST_FLAGS.packet) !== 0,
            copy: (flags & INTEREST_FLAGS.copy) !== 0,
            held: (flags & INTEREST_FLAGS.held) !== 0,
            fixed: (flags & INTEREST_FLAGS.fixed) !== 0,
          };
        }
        this.#puntHandler?.(punted);
      }
      if (packets.length < 256) return;
    }
  }

  /** Work units (cluster.md CL-R3): `units[u]` says whether this unit processes work unit u, or
   * (forwarding delivery, at the master) to which member's data-port MACs it passes u's frames on. */
  setWorkUnits(units: readonly UnitEntry[]): void {
    if (units.length !== this.#addon.workUnits) {
      throw new InvalidRuleError('EINVAL', `work unit table has ${units.length} entries, not ${this.#addon.workUnits}`);
    }
    const states = Buffer.alloc(units.length);
    // struct ep_unit_forwarding: peer[units], then mac[peers][ports][6]
    const owners = new Map<string, number>();
    let forwarding: Buffer | undefined;
    units.forEach((entry, unit) => {
      if (typeof entry === 'string') {
        states[unit] = UNIT_STATES[entry];
        return;
      }
      if (entry.forwardTo.length > this.#addon.maxPorts) throw new InvalidRuleError('EINVAL', `work unit ${unit}: ${entry.forwardTo.length} owner MACs, ports are at most ${this.#addon.maxPorts}`);
      const key = entry.forwardTo.join(',');
      let owner = owners.get(key);
      if (owner === undefined) {
        owner = owners.size;
        if (owner >= this.#addon.maxUnitPeers) throw new InvalidRuleError('EINVAL', `more than ${this.#addon.maxUnitPeers} members to forward work units to`);
        owners.set(key, owner);
        forwarding ??= Buffer.alloc(units.length + this.#addon.maxUnitPeers * this.#addon.maxPorts * 6);
        entry.forwardTo.forEach((mac, port) => macBytes(mac, `work unit ${unit}: owner MAC`).copy(forwarding!, units.length + (owner! * this.#addon.maxPorts + port) * 6));
      }
      states[unit] = UNIT_STATES.forward;
      forwarding![unit] = owner;
    });
    call(() => this.#addon.workUnitsSet(states, forwarding));
  }

  /** How ARP requests (IPv6: neighbour solicitations) for a local address on the port are
   * answered (cluster delivery modes). */
  setArpAnswer(port: number, ip: string, answer: ArpAnswer): void {
    const code = typeof answer === 'string' ? ARP_ANSWERS[answer] : ARP_ANSWERS.shared;
    const mac = typeof answer === 'string' ? undefined : macBytes(answer.sharedMac, 'shared MAC');
    if (familyOf(ip, 'local address') === 6) call(() => this.#addon.localAddress6Ndp(port, ipv6ToBuffer(ip), code, mac));
    else call(() => this.#addon.localAddressArp(port, ipv4ToNumber(ip, 'local address'), code, mac));
  }

  /** While on, the port drops unicast frames addressed to other MACs than its own (drop reason
   * other_host), whatever its promiscuous mode. */
  setOwnMacOnly(port: number, on: boolean): void {
    call(() => this.#addon.portOwnMacOnly(port, on));
  }

  /** The work unit of a connection from clientIp:clientPort, the same on every member. */
  workUnitOf(clientIp: string, clientPort: number): number {
    if (familyOf(clientIp, 'client ip') === 6) return this.#addon.workUnit6(ipv6ToBuffer(clientIp), checkPort(clientPort, 'client port'));
    return this.#addon.workUnit(ipv4ToNumber(clientIp, 'client ip'), checkPort(clientPort, 'client port'));
  }

  /** While on, workers record every learned connection's creation, TCP state changes and end. */
  enableReplication(on: boolean): void {
    this.#addon.replicationEnable(on);
  }

  /** Flow records produced since the last call, as raw bytes of `flowRecordSize` each: ship them to
   * peers as they are and `importFlows` them there. */
  takeFlowEvents(max = 4096): Buffer {
    return this.#addon.flowEvents(max);
  }

  /** Installs a peer's replicated connections; returns how many were queued. */
  importFlows(records: Buffer): number {
    return call(() => this.#addon.flowImport(records));
  }

  get flowRecordSize(): number {
    return this.#addon.flowRecordSize;
  }

  flowEventsLost(): number {
    return this.#addon.flowEventsLost();
  }

  /** Load per work unit for rebalancing: packets since start and connections now, indexed by unit. */
  unitLoads(): { packets: Float64Array; flows: Float64Array } {
    return this.#addon.unitLoads();
  }
}

export { protocolName };
