import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, inSubnet, loadConfig, parseConfig } from './config.js';

const minimal = {
  ports: [
    { device: 'net_af_packet0', address: '10.0.1.1' },
    { device: 'net_af_packet1', address: '10.0.2.1' },
  ],
};

const full = {
  eal: {
    lcores: [0, 1],
    memoryMb: 512,
    noHuge: true,
    filePrefix: 'ep-test',
    vdevs: ['net_af_packet0,iface=eplb-c', 'net_af_packet1,iface=eplb-s'],
  },
  ports: minimal.ports,
  routes: [{ prefix: '192.168.0.0', length: 16, port: 'net_af_packet1', gateway: '10.0.2.254' }],
  services: [
    {
      name: 'web',
      vip: '10.0.1.100',
      port: 80,
      protocol: 'tcp',
      servers: [
        { address: '10.0.2.11', port: 80, weight: 1 },
        { address: '10.0.2.12', port: 80, weight: 3 },
      ],
    },
  ],
  http: { port: 0 },
};

function problemsOf(document: unknown): string[] {
  try {
    parseConfig('test.json', JSON.stringify(document));
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('config was accepted');
}

function withService(patch: Record<string, unknown>, servers?: unknown[]): Record<string, unknown> {
  const service = { ...full.services[0], ...patch, ...(servers ? { servers } : {}) };
  return { ...full, services: [service] };
}

describe('config defaults', () => {
  it('fills every section from a config that only names its ports', () => {
    const config = parseConfig('minimal.json', JSON.stringify(minimal));
    expect(config.eal).toEqual({
      lcores: [0, 1],
      memoryMb: 512,
      noHuge: false,
      filePrefix: 'edgeplane',
      vdevs: [],
      allowPci: [],
      logLevel: 'notice',
    });
    expect(config.dataplane).toEqual({
      affinityCapacity: 65_536,
      flowCapacityPerWorker: 262_144,
      missPolicy: 'drop',
      timeouts: {
        synSeconds: 10,
        establishedSeconds: 300,
        finSeconds: 30,
        rstSeconds: 5,
        udpSeconds: 60,
        otherSeconds: 30,
      },
    });
    expect(config.ports.map((p) => p.prefixLength)).toEqual([24, 24]);
    expect(config.routes).toEqual([]);
    expect(config.services).toEqual([]);
    expect(config.http).toEqual({ host: '127.0.0.1', port: 9180 });
    expect(config.log).toEqual({ level: 'info' });
  });

  it('keeps given values and defaults a service to maglev in NAT mode', () => {
    const config = parseConfig('full.json', JSON.stringify(full));
    expect(config.eal.noHuge).toBe(true);
    expect(config.http).toEqual({ host: '127.0.0.1', port: 0 });
    expect(config.services[0]).toMatchObject({ name: 'web', algorithm: 'maglev', mode: 'nat' });
    expect(config.services[0]?.servers.map((s) => s.weight)).toEqual([1, 3]);
    expect(config.routes[0]?.gateway).toBe('10.0.2.254');
  });

  it('defaults a partial timeouts object field by field', () => {
    const config = parseConfig('t.json', JSON.stringify({ ...minimal, dataplane: { timeouts: { udpSeconds: 5 } } }));
    expect(config.dataplane.timeouts.udpSeconds).toBe(5);
    expect(config.dataplane.timeouts.establishedSeconds).toBe(300);
  });
});

describe('config problems name the JSON path of the bad field', () => {
  it('reports a malformed server address with its full path and value', () => {
    const bad = withService({}, [
      { address: '10.0.2.11', port: 80 },
      { address: '10.0.2', port: 80 },
    ]);
    expect(problemsOf(bad)).toEqual(['services[0].servers[1].address: "10.0.2" is not an IPv4 or IPv6 address']);
  });

  it('lists every problem at once', () => {
    const bad = {
      ...full,
      eal: { ...full.eal, lcores: [0] },
      ports: [{ device: 'net_af_packet0', address: '10.0.1.1', prefixLength: 33 }],
      services: [{ ...full.services[0], protocol: 'sctp' }],
    };
    const problems = problemsOf(bad);
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^eal\.lcores: needs a main lcore/);
    expect(problems[1]).toMatch(/^ports\[0\]\.prefixLength: /);
    expect(problems[2]).toMatch(/^services\[0\]\.protocol: /);
  });

  it('rejects weights outside 0..65535 (0 = configured but drained)', () => {
    expect(parseConfig('t', JSON.stringify(withService({}, [{ address: '10.0.2.11', port: 80, weight: 0 }]))).services[0]?.servers[0]?.weight).toBe(0);
    expect(problemsOf(withService({}, [{ address: '10.0.2.11', port: 80, weight: -1 }]))).toEqual([
      expect.stringMatching(/^services\[0\]\.servers\[0\]\.weight: Too small/),
    ]);
    expect(problemsOf(withService({}, [{ address: '10.0.2.11', port: 80, weight: 65536 }]))).toEqual([
      expect.stringMatching(/^services\[0\]\.servers\[0\]\.weight: Too big/),
    ]);
  });

  it('says which field is missing and which are unknown', () => {
    expect(problemsOf({})).toEqual(['ports: is required']);
    expect(problemsOf({ ports: [{ device: 'net_af_packet0', address: '10.0.1.1', prefixLength: '24' }] })).toEqual([
      'ports[0].prefixLength: Invalid input: expected number, received string',
    ]);
    expect(problemsOf({ ...minimal, htpp: {} })).toEqual(['(root): unknown field(s) "htpp"']);
  });

  it('refuses unknown algorithms and modes', () => {
    expect(problemsOf(withService({ algorithm: 'random' }))[0]).toMatch(/^services\[0\]\.algorithm: /);
    expect(problemsOf(withService({ mode: 'tproxy' }))[0]).toMatch(/^services\[0\]\.mode: /);
  });
});

describe('cross-field rules', () => {
  it('rejects two services with one name or one listening endpoint', () => {
    const web = full.services[0];
    const bad = { ...full, services: [web, { ...web, vip: '10.0.1.101' }, { ...web, name: 'web2' }] };
    expect(problemsOf(bad)).toEqual([
      'services[1].name: service name "web" is used twice',
      'services[2]: another service already listens on 10.0.1.100:80/tcp',
    ]);
  });

  it('accepts the same vip and port for tcp and udp', () => {
    const web = full.services[0];
    const config = parseConfig('x.json', JSON.stringify({ ...full, services: [web, { ...web, name: 'dns', protocol: 'udp' }] }));
    expect(config.services).toHaveLength(2);
  });

  it('rejects routes through ports that are not configured, listing the known ones', () => {
    const bad = { ...full, routes: [{ prefix: '0.0.0.0', length: 0, port: 'net_af_packet7', gateway: '10.0.2.254' }] };
    expect(problemsOf(bad)).toEqual([
      'routes[0].port: "net_af_packet7" is not a configured port (ports: net_af_packet0, net_af_packet1)',
    ]);
  });

  it('fills a cluster section from its flash config directory and checks what it announces', () => {
    const config = parseConfig('cluster.json', JSON.stringify({ ...full, cluster: { flashConfigDir: '/flash-config' } }));
    expect(config.cluster).toEqual({ flashConfigDir: '/flash-config', multicastGroup: '239.77.0.1', managementPort: 8443, delivery: 'unicast-mac', announce: [] });
    const bad = { ...full, cluster: { flashConfigDir: '/f', multicastGroup: '10.0.0.1', announce: [{ device: 'net_af_packet7', mac: '02:65:70', addresses: ['10.0.1.100'] }] } };
    expect(problemsOf(bad)).toEqual([
      'cluster.multicastGroup: must be an IPv4 multicast address (224.0.0.0/4)',
      'cluster.announce[0].mac: must be a MAC address like 02:65:70:00:01:64',
      'cluster.announce[0].device: "net_af_packet7" is not a configured port (ports: net_af_packet0, net_af_packet1)',
    ]);
    // IPv6 shared addresses are announced by neighbour advertisement; anything else is refused
    const both = { ...full, cluster: { flashConfigDir: '/f', announce: [{ device: 'net_af_packet0', mac: '02:65:70:00:01:64', addresses: ['10.0.1.100', 'fd00:1::100'] }] } };
    expect(parseConfig('cluster.json', JSON.stringify(both)).cluster?.announce[0]?.addresses).toEqual(['10.0.1.100', 'fd00:1::100']);
    const notAddress = { ...both, cluster: { ...both.cluster, announce: [{ ...both.cluster.announce[0], addresses: ['vip.example'] }] } };
    expect(problemsOf(notAddress)).toEqual(['cluster.announce[0].addresses[0]: "vip.example" is not an IPv4 or IPv6 address']);
    const unknownPort = { ...full, cluster: { flashConfigDir: '/f', announce: [{ device: 'net_af_packet7', mac: '02:65:70:00:01:64', addresses: ['10.0.1.100'] }] } };
    expect(problemsOf(unknownPort)).toEqual(['cluster.announce[0].device: "net_af_packet7" is not a configured port (ports: net_af_packet0, net_af_packet1)']);
  });

  it('checks the announced MAC against the delivery mode', () => {
    const cluster = (delivery: string, mac?: string) => ({
      ...full,
      cluster: { flashConfigDir: '/f', delivery, announce: [{ device: 'net_af_packet0', ...(mac ? { mac } : {}), addresses: ['10.0.1.100'] }] },
    });
    for (const good of [cluster('multicast-mac', '03:65:70:00:01:64'), cluster('master-forwarding'), cluster('unicast-mac', '02:65:70:00:01:64')]) {
      expect(parseConfig('cluster.json', JSON.stringify(good)).cluster?.delivery).toBe(good.cluster.delivery);
    }
    expect(problemsOf(cluster('multicast-mac', '02:65:70:00:01:64'))).toEqual(['cluster.announce[0].mac: multicast-MAC delivery needs a multicast MAC (first octet odd)']);
    expect(problemsOf(cluster('unicast-mac', '03:65:70:00:01:64'))).toEqual(['cluster.announce[0].mac: unicast-MAC delivery needs a unicast MAC (first octet even)']);
    expect(problemsOf(cluster('unicast-mac'))).toEqual(['cluster.announce[0].mac: unicast-mac delivery needs the shared MAC']);
    expect(problemsOf(cluster('master-forwarding', '02:65:70:00:01:64'))).toEqual([
      "cluster.announce[0].mac: forwarding delivery answers with the master's port MAC: no shared MAC",
    ]);
    expect(problemsOf(cluster('anycast', '02:65:70:00:01:64'))[0]).toMatch(/^cluster\.delivery: /);
  });

  it('rejects a gateway that is not on the port subnet', () => {
    const bad = { ...full, routes: [{ prefix: '0.0.0.0', length: 0, port: 'net_af_packet1', gateway: '10.0.9.1' }] };
    expect(problemsOf(bad)).toEqual([
      "routes[0].gateway: 10.0.9.1 is not on port net_af_packet1's subnet 10.0.2.1/24",
    ]);
  });

  it('rejects duplicate devices and duplicate servers', () => {
    const bad = {
      ...withService({}, [
        { address: '10.0.2.11', port: 80 },
        { address: '10.0.2.11', port: 80 },
      ]),
      ports: [minimal.ports[0], minimal.ports[0], minimal.ports[1]],
    };
    expect(problemsOf(bad)).toEqual([
      'ports[1].device: device "net_af_packet0" is listed twice',
      'services[0].servers[1]: server 10.0.2.11:80 is listed twice',
    ]);
  });
});

describe('loadConfig', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ep-config-'));

  it('reads and validates a file', () => {
    const file = path.join(dir, 'good.json');
    writeFileSync(file, JSON.stringify(full, null, 2));
    expect(loadConfig(file).services[0]?.vip).toBe('10.0.1.100');
  });

  it('reports invalid JSON with line and column', () => {
    const file = path.join(dir, 'broken.json');
    writeFileSync(file, '{\n  "ports": [],\n  "http": { "port": 80, }\n}\n');
    expect(() => loadConfig(file)).toThrow(/not valid JSON: .* at line 3 column 25/);
  });

  it('reports an unreadable file with the reason', () => {
    const file = path.join(dir, 'missing.json');
    expect(() => loadConfig(file)).toThrow(new RegExp(`config ${file} is invalid:\\n  - cannot read the file: ENOENT`));
  });

  it('is exact about address syntax and subnet membership', () => {
    expect(inSubnet('10.0.1.100', '10.0.1.1', 24)).toBe(true);
    expect(inSubnet('10.0.2.100', '10.0.1.1', 24)).toBe(false);
    expect(inSubnet('192.168.7.7', '10.0.1.1', 0)).toBe(true);
    expect(inSubnet('10.0.1.1', '10.0.1.1', 32)).toBe(true);
    expect(inSubnet('10.0.1.2', '10.0.1.1', 32)).toBe(false);
  });
});

describe('service modes, algorithms and health checks', () => {
  it('fills health check defaults and keeps mode, algorithm and snat', () => {
    const config = parseConfig(
      't',
      JSON.stringify(
        withService({
          mode: 'fullnat',
          algorithm: 'least-load',
          snat: { ip: '10.0.2.1', portMin: 20000, portMax: 29999 },
          healthCheck: { type: 'http', path: '/health', expectStatus: 204 },
        }),
      ),
    );
    expect(config.services[0]).toMatchObject({
      mode: 'fullnat',
      algorithm: 'least-load',
      onServerFailure: 'keep',
      healthCheck: { type: 'http', path: '/health', expectStatus: 204, intervalMs: 500, timeoutMs: 400, rise: 2, fall: 2 },
    });
  });

  it('names the field at fault in cross-field rules', () => {
    expect(problemsOf(withService({ mode: 'fullnat' }))).toEqual([
      'services[0].snat: mode "fullnat" needs snat {ip, portMin, portMax}: the source the servers see',
    ]);
    expect(problemsOf(withService({ snat: { ip: '10.0.2.1', portMin: 2, portMax: 1 } }))).toEqual([
      'services[0].snat: only mode "fullnat" translates the source (mode is "nat")',
      'services[0].snat.portMax: 1 is below portMin 2',
    ]);
    expect(problemsOf(withService({ guePort: 6080 }))).toEqual(['services[0].guePort: only mode "gue" uses a GUE port (mode is "nat")']);
    expect(problemsOf(withService({ mode: 'dsr' }, [{ address: '10.0.2.11', port: 8080 }]))).toEqual([
      'services[0].servers[0].port: mode "dsr" keeps the client\'s destination port: use 0 or the service port 80',
    ]);
    expect(problemsOf(withService({ healthCheck: { type: 'tcp', path: '/', intervalMs: 200, timeoutMs: 300 } }))).toEqual([
      'services[0].healthCheck: path and expectStatus belong to type "http" checks',
      'services[0].healthCheck.timeoutMs: 300 ms is longer than intervalMs 200',
    ]);
    expect(problemsOf(withService({ protocol: 'udp', healthCheck: { type: 'http' } }))).toEqual([
      'services[0].healthCheck.type: an HTTP check needs a tcp service',
    ]);
  });

  it('takes a prime Maglev table size for large pools', () => {
    expect(parseConfig('t', JSON.stringify(withService({ tableSize: 655373 }))).services[0]!.tableSize).toBe(655373);
    expect(problemsOf(withService({ tableSize: 655371 }))).toEqual(['services[0].tableSize: 655371 is not a prime (e.g. 65537, 655373)']);
  });

  it('takes QoS marks per direction and names what is wrong with them', () => {
    const qos = { toServer: { dscp: 46, vlan: 100, pcp: 5 }, toClient: { dscp: 10, mplsLabel: 1000, pcp: 3 } };
    const [service] = parseConfig('t', JSON.stringify(withService({ qos }))).services;
    expect(service!.qos).toEqual(qos);
    expect(problemsOf(withService({ qos: { toServer: { dscp: 64, vlan: 4095, mplsLabel: 15 } } }))).toEqual([
      'services[0].qos.toServer.dscp: Too big: expected number to be <=63',
      'services[0].qos.toServer.vlan: Too big: expected number to be <=4094',
      'services[0].qos.toServer.mplsLabel: Too small: expected number to be >=16',
    ]);
    expect(problemsOf(withService({ qos: { toServer: { dscp: 1 }, toClient: { tos: 1 } } }))).toEqual([
      'services[0].qos.toClient: unknown field(s) "tos"',
    ]);
    expect(problemsOf(withService({ qos: { toServer: { pcp: 5 } } }))).toEqual([
      'services[0].qos.toServer.pcp: a priority needs a tag to carry it: give vlan (802.1p) or mplsLabel (traffic class)',
    ]);
    expect(problemsOf(withService({ mode: 'dsr', qos: { toClient: { dscp: 46 } } }, [{ address: '10.0.2.11', port: 80 }]))).toEqual([
      'services[0].qos.toClient: replies of mode "dsr" go from the servers to the clients past the unit: only nat and fullnat mark them',
    ]);
  });

  it('needs at least one agent key, each agent once', () => {
    expect(problemsOf({ ...full, agents: { keys: [] } })).toEqual(['agents.keys: agents need at least one key']);
    const twice = { ...full, agents: { keys: [{ id: 'a', keyFile: '/k' }, { id: 'a', keyFile: '/k2' }] } };
    expect(problemsOf(twice)).toEqual(['agents.keys[1].id: agent "a" is listed twice']);
    expect(parseConfig('t', JSON.stringify({ ...full, agents: { keys: [{ id: 'a', keyFile: '/k' }] } })).agents).toEqual({
      host: '0.0.0.0',
      port: 9181,
      keys: [{ id: 'a', keyFile: '/k' }],
      reportIntervalMs: 1000,
      missedReports: 3,
      maxClockSkewMs: 30000,
    });
  });
});

describe('IPv6 services', () => {
  const ports6 = [
    { device: 'net_af_packet0', address: '10.0.1.1', address6: 'fd00:1::1' },
    { device: 'net_af_packet1', address: '10.0.2.1', address6: 'fd00:2::1', prefixLength6: 64 },
  ];
  const service6 = {
    name: 'web6',
    vip: 'fd00:1::100',
    port: 80,
    protocol: 'tcp',
    mode: 'fullnat',
    snat: { ip: 'fd00:2::250', portMin: 20000, portMax: 29999 },
    servers: [{ address: 'fd00:2::11', port: 80 }],
  };

  it('takes IPv6 port addresses, routes, VIPs, servers and full-NAT addresses', () => {
    const config = parseConfig(
      'v6.json',
      JSON.stringify({
        ports: ports6,
        routes: [{ prefix: 'fd00:9::', length: 48, port: 'net_af_packet1', gateway: 'fd00:2::fe' }],
        services: [service6, { ...full.services[0] }],
      }),
    );
    expect(config.ports.map((p) => [p.address6, p.prefixLength6])).toEqual([
      ['fd00:1::1', undefined],
      ['fd00:2::1', 64],
    ]);
    expect(config.services[0]!.vip).toBe('fd00:1::100');
    expect(config.routes[0]!.length).toBe(48);
  });

  it('takes IPv6 services in the tunnel modes when a port address6 subnet or an IPv6 route reaches their servers', () => {
    const tunnels = (['ipip', 'gre', 'gue'] as const).map((mode, i) => ({
      ...service6,
      name: `tunnel6-${mode}`,
      mode,
      snat: undefined,
      port: 81 + i,
      servers: [
        { address: 'fd00:2::11', port: 0 },
        { address: 'fd00:9::11', port: 0 },
      ],
    }));
    const config = parseConfig(
      'v6-tunnels.json',
      JSON.stringify({
        ports: ports6,
        routes: [{ prefix: 'fd00:9::', length: 48, port: 'net_af_packet1', gateway: 'fd00:2::fe' }],
        services: [...tunnels, { ...tunnels[2]!, name: 'gue-6081', port: 90, guePort: 6081 }],
      }),
    );
    expect(config.services.map((s) => s.mode)).toEqual(['ipip', 'gre', 'gue', 'gue']);
    expect(config.services[3]!.guePort).toBe(6081);
  });

  it('refuses an IPv6 tunnel to a server no port address6 or IPv6 route reaches, and IPv4 servers behind an IPv6 VIP', () => {
    expect(
      problemsOf({
        ports: ports6,
        services: [
          { ...service6, name: 'gre6', mode: 'gre', snat: undefined, servers: [{ address: 'fd00:2::11', port: 0 }, { address: 'fd00:9::11', port: 0 }] },
          { ...service6, name: 'ipip6', mode: 'ipip', snat: undefined, port: 81, servers: [{ address: '10.0.2.11', port: 0 }] },
          { ...service6, name: 'gue6', mode: 'gue', snat: undefined, port: 82, servers: [{ address: 'fd00:2::12', port: 8080 }] },
          { ...service6, name: 'dsr6', mode: 'dsr', snat: undefined, port: 83, guePort: 6081, servers: [{ address: 'fd00:2::12', port: 0 }] },
        ],
      }),
    ).toEqual([
      'services[0].servers[1].address: mode "gre" sends from the address6 of the port towards fd00:9::11, but no port\'s address6 subnet or IPv6 route reaches it',
      'services[1].servers[0].address: 10.0.2.11 is not IPv6 like the vip fd00:1::100',
      'services[2].servers[0].port: mode "gue" keeps the client\'s destination port: use 0 or the service port 82',
      'services[3].guePort: only mode "gue" uses a GUE port (mode is "dsr")',
    ]);
  });

  it('refuses mixed families and IPv6 without a port address6, naming the field', () => {
    expect(
      problemsOf({
        ports: ports6,
        routes: [
          { prefix: 'fd00:9::', length: 48, port: 'net_af_packet1', gateway: '10.0.2.254' },
          { prefix: '10.9.0.0', length: 33, port: 'net_af_packet1' },
          { prefix: 'fd00:9::', length: 48, port: 'net_af_packet1', gateway: 'fd00:3::1' },
        ],
        services: [
          { ...service6, servers: [{ address: '10.0.2.11', port: 80 }], snat: { ...service6.snat, ip: '10.0.2.250' } },
        ],
      }),
    ).toEqual([
      'routes[0].gateway: 10.0.2.254 is not of the prefix fd00:9::\'s address family',
      'routes[1].length: 33 is longer than an IPv4 prefix (32)',
      "routes[2].gateway: fd00:3::1 is not on port net_af_packet1's subnet fd00:2::1/64",
      'services[0].servers[0].address: 10.0.2.11 is not IPv6 like the vip fd00:1::100',
      'services[0].snat.ip: 10.0.2.250 is not IPv6 like the vip fd00:1::100',
    ]);
    expect(problemsOf({ ports: minimal.ports, services: [service6] })).toEqual([
      'services[0].vip: an IPv6 service needs a port with an address6 (to find its servers by neighbour discovery)',
    ]);
    expect(problemsOf({ ports: [{ device: 'p0', address: '10.0.1.1', address6: '10.0.1.1' }] })).toEqual([
      'ports[0].address6: "10.0.1.1" is not an IPv6 address',
    ]);
  });

  it('checks IPv6 subnet membership bit by bit', () => {
    expect(inSubnet('fd00:1::100', 'fd00:1::1', 64)).toBe(true);
    expect(inSubnet('fd00:2::100', 'fd00:1::1', 64)).toBe(false);
    expect(inSubnet('fd00:1::100', 'fd00:1::1', 120)).toBe(false);
    expect(inSubnet('fd00:1::17', 'fd00:1::1', 123)).toBe(true);
    expect(inSubnet('fd00:1::21', 'fd00:1::1', 123)).toBe(false);
    expect(inSubnet('10.0.1.1', 'fd00:1::1', 0)).toBe(false);
  });
});
