/* The apply logic of an adopted cluster policy: what it changes, in which order, and what it refuses.
 * The target here records the calls (the data plane side is test/cluster-dp/policy-apply.test.ts). */
import { describe, expect, it } from 'vitest';
import { policySchema, type Policy } from '../../flash-config/index.js';
import { parseConfig, type PortSettings, type ServiceSettings } from './config.js';
import { applyAdoptedPolicy, planPolicy, type PolicyTarget } from './cluster-policy-apply.js';
import { policyServiceSettings } from './flash-config-loader.js';

const PORTS = parseConfig(
  'test',
  JSON.stringify({
    ports: [
      { device: 'net_af_packet0', address: '10.0.1.1', prefixLength: 24 },
      { device: 'net_af_packet1', address: '10.0.2.1', prefixLength: 24 },
    ],
  }),
).ports;

const serviceA = (server: string, extra: object = {}) => ({
  name: 'a',
  vip: '10.0.1.100',
  protocol: 'tcp',
  port: 80,
  algorithm: 'maglev',
  mode: 'nat',
  servers: [{ address: server, port: 80, weight: 1 }],
  ...extra,
});
const serviceB = { name: 'b', vip: '10.0.1.100', protocol: 'tcp', port: 8080, algorithm: 'wrr', mode: 'nat', servers: [{ address: '10.0.2.11', port: 80, weight: 1 }] };

const policy = (configVersion: number, services: object[]): Policy => policySchema.parse({ configVersion, cluster: {}, services });

/** The unit's services as the service manager holds them; records every call. */
class RecordingServices implements PolicyTarget {
  readonly calls: string[] = [];
  readonly services: Map<string, ServiceSettings>;

  constructor(
    initial: Policy,
    private readonly failOn?: string,
  ) {
    this.services = new Map(policyServiceSettings(initial, PORTS).map((service) => [service.name, service]));
  }

  serviceSettings(): ServiceSettings[] {
    return [...this.services.values()];
  }

  portSettings(): PortSettings[] {
    return PORTS;
  }

  addService(settings: ServiceSettings): void {
    this.#call('add', settings.name);
    this.services.set(settings.name, settings);
  }

  removeService(name: string): void {
    this.#call('remove', name);
    this.services.delete(name);
  }

  updateService(settings: ServiceSettings): void {
    this.#call('update', settings.name);
    this.services.set(settings.name, settings);
  }

  #call(kind: string, name: string): void {
    this.calls.push(`${kind} ${name}`);
    if (name === this.failOn) throw new Error(`service id table full (${kind} ${name})`);
  }
}

function recordingLog() {
  const lines: { level: string; event: string; fields: Record<string, unknown> }[] = [];
  return { lines, log: (level: 'info' | 'warn', event: string, fields: Record<string, unknown> = {}) => lines.push({ level, event, fields }) };
}

describe('planPolicy', () => {
  it('finds the changed pool and the new service of a higher version', () => {
    const running = policyServiceSettings(policy(3, [serviceA('10.0.2.11')]), PORTS);
    const plan = planPolicy(running, PORTS, policy(4, [serviceA('10.0.2.12'), serviceB]));
    expect(plan.changed.map((s) => [s.name, s.servers.map((server) => server.address)])).toEqual([['a', ['10.0.2.12']]]);
    expect(plan.added.map((s) => s.name)).toEqual(['b']);
    expect(plan.removed).toEqual([]);
    expect(plan.unchanged).toEqual([]);
  });

  it('leaves an identical service alone and finds removed ones and algorithm or weight changes', () => {
    const running = policyServiceSettings(policy(3, [serviceA('10.0.2.11'), serviceB]), PORTS);
    expect(planPolicy(running, PORTS, policy(4, [serviceA('10.0.2.11'), serviceB])).unchanged).toEqual(['a', 'b']);
    const removed = planPolicy(running, PORTS, policy(4, [serviceA('10.0.2.11')]));
    expect(removed.removed.map((s) => s.name)).toEqual(['b']);
    expect(removed.unchanged).toEqual(['a']);
    expect(planPolicy(running, PORTS, policy(4, [serviceA('10.0.2.11', { algorithm: 'wrr' }), serviceB])).changed.map((s) => s.algorithm)).toEqual(['wrr']);
    const weighted = { ...serviceB, servers: [{ address: '10.0.2.11', port: 80, weight: 5 }] };
    expect(planPolicy(running, PORTS, policy(4, [serviceA('10.0.2.11'), weighted])).changed.map((s) => s.servers[0]?.weight)).toEqual([5]);
  });
});

describe('applyAdoptedPolicy', () => {
  it('removes, then changes, then adds, and logs each step and the summary', () => {
    const target = new RecordingServices(policy(3, [serviceA('10.0.2.11'), { ...serviceB, name: 'old', port: 8081 }]));
    const { lines, log } = recordingLog();
    const result = applyAdoptedPolicy(target, policy(4, [serviceA('10.0.2.12'), serviceB]), log);
    expect(target.calls).toEqual(['remove old', 'update a', 'add b']);
    expect(result).toEqual({ applied: true, configVersion: 4, removed: ['old'], changed: ['a'], added: ['b'], failed: [] });
    expect(lines.map((line) => line.event)).toEqual(['policy service removed', 'policy service changed', 'policy service added', 'policy applied']);
    expect(lines[0]?.fields).toMatchObject({ service: 'old', establishedFlows: 'keep' });
    expect(lines[1]?.fields).toMatchObject({ service: 'a', servers: ['10.0.2.12:80=1'] });
    expect(lines[2]?.fields).toMatchObject({ service: 'b', vip: '10.0.1.100', port: 8080, algorithm: 'wrr' });
    expect(target.services.get('a')?.servers.map((server) => server.address)).toEqual(['10.0.2.12']);
  });

  it('refuses a policy whose full-NAT servers are on no data port subnet, touching nothing', () => {
    const target = new RecordingServices(policy(3, [serviceA('10.0.2.11')]));
    const { lines, log } = recordingLog();
    const offSubnet = { ...serviceB, mode: 'fullnat', servers: [{ address: '192.0.2.7', port: 80, weight: 1 }] };
    const result = applyAdoptedPolicy(target, policy(4, [serviceA('10.0.2.12'), offSubnet]), log);
    expect(result).toEqual({ applied: false, configVersion: 4, reason: expect.stringMatching(/services\[1\]: full NAT needs a data address on the subnet of server 192\.0\.2\.7/) });
    expect(target.calls).toEqual([]);
    expect(lines).toEqual([{ level: 'warn', event: 'policy not applied: the running services stay as they were', fields: { configVersion: 4, reason: result.applied ? '' : result.reason } }]);
  });

  it('refuses an IPv6 service on a unit whose data ports have no IPv6 address', () => {
    const target = new RecordingServices(policy(3, [serviceA('10.0.2.11')]));
    const { log } = recordingLog();
    const v6 = { name: 'v6', vip: '2001:db8::10', protocol: 'tcp', port: 80, algorithm: 'maglev', mode: 'nat', servers: [{ address: '2001:db8:1::1', port: 80, weight: 1 }] };
    const result = applyAdoptedPolicy(target, policy(4, [serviceA('10.0.2.11'), v6]), log);
    expect(result).toMatchObject({ applied: false, reason: expect.stringMatching(/services\[1\]\.vip: an IPv6 service needs a port with an address6/) });
    expect(target.calls).toEqual([]);
  });

  it('logs a step the data plane refuses and still runs the others', () => {
    const target = new RecordingServices(policy(3, [serviceA('10.0.2.11')]), 'b');
    const { lines, log } = recordingLog();
    const third = { ...serviceB, name: 'c', port: 8082 };
    const result = applyAdoptedPolicy(target, policy(4, [serviceA('10.0.2.12'), serviceB, third]), log);
    expect(target.calls).toEqual(['update a', 'add b', 'add c']);
    expect(result).toMatchObject({ applied: true, changed: ['a'], added: ['c'], failed: [{ service: 'b', step: 'added', reason: 'service id table full (add b)' }] });
    expect(lines.find((line) => line.event === 'policy service not added')?.fields).toMatchObject({ service: 'b', reason: 'service id table full (add b)' });
    expect(lines.at(-1)).toMatchObject({ level: 'warn', event: 'policy applied', fields: { failed: ['b (added): service id table full (add b)'] } });
  });
});
