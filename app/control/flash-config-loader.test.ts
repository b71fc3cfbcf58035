import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAuthority, FlashConfigError, loadAuthority, provisionUnit, type Authority } from '../../flash-config/index.js';
import { ConfigError } from './config.js';
import { loadFlashConfig, PRODUCTION_MEMORY_MB, vfioPciDevices } from './flash-config-loader.js';

const NICS = ['0000:00:06.0', '0000:00:07.0'];

const policy = {
  configVersion: 4,
  cluster: { keepaliveIntervalMs: 100, memberDeadAfterMs: 400, rebalanceIntervalMs: 2000 },
  services: [
    {
      name: 'web',
      vip: '198.51.100.10',
      protocol: 'tcp',
      port: 80,
      algorithm: 'maglev',
      mode: 'nat',
      servers: [
        { address: '203.0.113.21', port: 8080, weight: 1 },
        { address: '203.0.113.22', port: 8080, weight: 3 },
      ],
    },
    {
      name: 'api',
      vip: '198.51.100.11',
      protocol: 'tcp',
      port: 443,
      algorithm: 'least-load',
      mode: 'fullnat',
      servers: [{ address: '203.0.113.23', port: 8443, weight: 1 }],
    },
    {
      name: 'dns',
      vip: '198.51.100.12',
      protocol: 'udp',
      port: 53,
      algorithm: 'wrr',
      mode: 'tunnel',
      servers: [{ address: '203.0.113.24', port: 53, weight: 2 }],
    },
  ],
};

let root: string;
let authority: Authority;
let units = 0;

async function provision(
  options: { policy?: object; dataAddresses?: string[]; dataAddresses6?: string[]; clusterAddresses?: string[] } = {},
): Promise<string> {
  units += 1;
  const dir = join(root, `unit${units}`);
  await provisionUnit(
    authority,
    {
      unitId: `unit${units}`,
      mgmtAddress: '192.0.2.11',
      dataAddresses: options.dataAddresses ?? ['198.51.100.1', '203.0.113.1'],
      ...(options.dataAddresses6 ? { dataAddresses6: options.dataAddresses6 } : {}),
      network: { mgmtPrefixLength: 24, dataPrefixLength: 24, clusterAddresses: options.clusterAddresses ?? [], clusterPort: 7946 },
      policyBytes: Buffer.from(JSON.stringify(options.policy ?? policy, null, 2)),
      policySource: 'policy.json',
    },
    dir,
  );
  return dir;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'flash-config-loader-'));
  await createAuthority({ dir: join(root, 'authority'), clusterName: 'lab' });
  authority = await loadAuthority(join(root, 'authority'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe('loadFlashConfig', () => {
  it('builds the appliance config from identity, signed policy and production defaults', async () => {
    const dir = await provision();
    const { verified, config } = await loadFlashConfig(dir, { pciDevices: NICS, lcores: [0, 1, 2] });
    expect(verified.identity.unit.id).toBe(`unit${units}`);
    expect(config.eal).toEqual({
      lcores: [0, 1, 2],
      memoryMb: PRODUCTION_MEMORY_MB,
      noHuge: false,
      filePrefix: 'edgeplane',
      vdevs: [],
      allowPci: NICS,
      logLevel: 'notice',
    });
    expect(config.ports).toEqual([
      { device: '0000:00:06.0', address: '198.51.100.1', prefixLength: 24 },
      { device: '0000:00:07.0', address: '203.0.113.1', prefixLength: 24 },
    ]);
    expect(config.routes).toEqual([]);
    expect(config.http).toEqual({ host: '127.0.0.1', port: 9180 });
    expect(config.agents).toBeUndefined();
    const defaults = { onServerFailure: 'keep', maxDrainMs: 300_000 };
    expect(config.services).toEqual([
      {
        name: 'web',
        vip: '198.51.100.10',
        port: 80,
        protocol: 'tcp',
        algorithm: 'maglev',
        mode: 'nat',
        servers: [
          { address: '203.0.113.21', port: 8080, weight: 1 },
          { address: '203.0.113.22', port: 8080, weight: 3 },
        ],
        ...defaults,
      },
      {
        name: 'api',
        vip: '198.51.100.11',
        port: 443,
        protocol: 'tcp',
        algorithm: 'least-load',
        mode: 'fullnat',
        snat: { ip: '203.0.113.1', portMin: 1024, portMax: 65535 },
        servers: [{ address: '203.0.113.23', port: 8443, weight: 1 }],
        ...defaults,
      },
      {
        name: 'dns',
        vip: '198.51.100.12',
        port: 53,
        protocol: 'udp',
        algorithm: 'wrr',
        mode: 'ipip',
        servers: [{ address: '203.0.113.24', port: 53, weight: 2 }],
        ...defaults,
      },
    ]);
    expect(config.cluster).toBeUndefined();
  });

  it('unicast-MAC delivery: each data port announces the shared MAC for the cluster addresses and VIPs on its subnet', async () => {
    const delivery = { mode: 'unicast-mac', mac: '02:65:70:00:00:01' };
    const dir = await provision({ policy: { ...policy, cluster: { ...policy.cluster, delivery } }, clusterAddresses: ['203.0.113.1'] });
    const { config } = await loadFlashConfig(dir, { pciDevices: NICS });
    expect(config.cluster).toMatchObject({
      flashConfigDir: dir,
      delivery: 'unicast-mac',
      announce: [
        { device: '0000:00:07.0', mac: delivery.mac, addresses: ['203.0.113.1'] },
        { device: '0000:00:06.0', mac: delivery.mac, addresses: ['198.51.100.10', '198.51.100.11', '198.51.100.12'] },
      ],
    });
  });

  it('multicast-MAC and forwarding delivery: the shared multicast MAC, or none (the master answers with its own)', async () => {
    const multicast = { mode: 'multicast-mac', mac: '03:65:70:00:00:01' };
    let dir = await provision({ policy: { ...policy, cluster: { ...policy.cluster, delivery: multicast } }, clusterAddresses: ['203.0.113.1'] });
    expect((await loadFlashConfig(dir, { pciDevices: NICS })).config.cluster).toMatchObject({
      delivery: 'multicast-mac',
      announce: [
        { device: '0000:00:07.0', mac: multicast.mac, addresses: ['203.0.113.1'] },
        { device: '0000:00:06.0', mac: multicast.mac, addresses: ['198.51.100.10', '198.51.100.11', '198.51.100.12'] },
      ],
    });
    dir = await provision({ policy: { ...policy, cluster: { ...policy.cluster, delivery: { mode: 'master-forwarding' } } }, clusterAddresses: ['203.0.113.1'] });
    const forwarding = (await loadFlashConfig(dir, { pciDevices: NICS })).config.cluster;
    expect(forwarding?.delivery).toBe('master-forwarding');
    expect(forwarding?.announce).toEqual([
      { device: '0000:00:07.0', addresses: ['203.0.113.1'] },
      { device: '0000:00:06.0', addresses: ['198.51.100.10', '198.51.100.11', '198.51.100.12'] },
    ]);
  });

  it('refuses a multicast-MAC delivery whose MAC is unicast or broadcast, and a forwarding delivery with a MAC', async () => {
    const withDelivery = (delivery: object) => ({ ...policy, cluster: { ...policy.cluster, delivery } });
    await expect(provision({ policy: withDelivery({ mode: 'multicast-mac', mac: '02:65:70:00:00:01' }) })).rejects.toThrow(/cluster\.delivery\.mac: must be a multicast MAC \(first octet odd/);
    await expect(provision({ policy: withDelivery({ mode: 'multicast-mac', mac: 'ff:ff:ff:ff:ff:ff' }) })).rejects.toThrow(/not the broadcast address/);
    await expect(provision({ policy: withDelivery({ mode: 'multicast-mac' }) })).rejects.toThrow(/cluster\.delivery\.mac/);
    await expect(provision({ policy: withDelivery({ mode: 'master-forwarding', mac: '02:65:70:00:00:01' }) })).rejects.toThrow(/cluster\.delivery/);
    await expect(provision({ policy: withDelivery({ mode: 'broadcast' }) })).rejects.toThrow(/cluster\.delivery/);
  });

  it('unicast-MAC delivery refuses a cluster address on no data subnet, and a multicast MAC', async () => {
    const offSubnet = { ...policy, cluster: { ...policy.cluster, delivery: { mode: 'unicast-mac', mac: '02:65:70:00:00:01' } } };
    const dir = await provision({ policy: offSubnet, clusterAddresses: ['192.0.2.100'] });
    await expect(loadFlashConfig(dir, { pciDevices: NICS })).rejects.toThrow(/network\.clusterAddresses\[0\]: 192\.0\.2\.100 is on no data port's IPv4 subnet/);
    const multicastMac = { ...policy, cluster: { ...policy.cluster, delivery: { mode: 'unicast-mac', mac: '03:65:70:00:00:01' } } };
    await expect(provision({ policy: multicastMac })).rejects.toThrow(/cluster\.delivery\.mac: must be a unicast MAC/);
  });

  it('refuses a policy altered after signing, naming the file and the reason', async () => {
    const dir = await provision();
    const text = await readFile(join(dir, 'policy.json'), 'utf8');
    await writeFile(join(dir, 'policy.json'), text.replace('"port": 8080', '"port": 8081'));
    const refused = loadFlashConfig(dir, { pciDevices: NICS });
    await expect(refused).rejects.toBeInstanceOf(FlashConfigError);
    await expect(refused).rejects.toMatchObject({ file: 'policy.json', reason: expect.stringMatching(/signature .* does not verify/) });
  });

  it('refuses a unit certificate that has expired', async () => {
    const dir = await provision();
    const later = new Date(Date.now() + 6 * 365 * 86_400_000);
    await expect(loadFlashConfig(dir, { pciDevices: NICS, now: later })).rejects.toMatchObject({
      name: 'FlashConfigError',
      reason: expect.stringMatching(/expired/),
    });
  });

  it('refuses when fewer data NICs are bound to vfio-pci than the identity has data addresses', async () => {
    const dir = await provision();
    const refused = loadFlashConfig(dir, { pciDevices: ['0000:00:06.0'] });
    await expect(refused).rejects.toBeInstanceOf(ConfigError);
    await expect(refused).rejects.toThrow(/names 2 data address\(es\) but 1 data NIC\(s\) are bound to vfio-pci \(0000:00:06\.0\)/);
  });

  it('dual stack: unit.dataAddresses6 gives the ports IPv6 addresses; IPv6 VIPs, cluster addresses and full-NAT sources follow them', async () => {
    const web6 = {
      name: 'web6',
      vip: '2001:db8:c::10',
      protocol: 'tcp',
      port: 80,
      algorithm: 'maglev',
      mode: 'fullnat',
      servers: [{ address: '2001:db8:5::21', port: 8080, weight: 1 }],
    };
    const delivery = { mode: 'unicast-mac', mac: '02:65:70:00:00:01' };
    const dir = await provision({
      policy: { ...policy, cluster: { ...policy.cluster, delivery }, services: [...policy.services, web6] },
      dataAddresses6: ['2001:db8:c::1', '2001:db8:5::1'],
      clusterAddresses: ['203.0.113.1', '2001:db8:5::100'],
    });
    const { verified, config } = await loadFlashConfig(dir, { pciDevices: NICS });
    expect(verified.unit.addresses).toEqual(expect.arrayContaining(['2001:db8:c::1', '2001:db8:5::1']));
    expect(config.ports).toEqual([
      { device: '0000:00:06.0', address: '198.51.100.1', prefixLength: 24, address6: '2001:db8:c::1', prefixLength6: 64 },
      { device: '0000:00:07.0', address: '203.0.113.1', prefixLength: 24, address6: '2001:db8:5::1', prefixLength6: 64 },
    ]);
    expect(config.services.find((service) => service.name === 'web6')?.snat).toEqual({ ip: '2001:db8:5::1', portMin: 1024, portMax: 65535 });
    expect(config.cluster?.announce).toEqual([
      { device: '0000:00:07.0', mac: delivery.mac, addresses: ['203.0.113.1', '2001:db8:5::100'] },
      { device: '0000:00:06.0', mac: delivery.mac, addresses: ['198.51.100.10', '198.51.100.11', '198.51.100.12', '2001:db8:c::10'] },
    ]);
  });

  it('refuses an IPv6 address among the IPv4 data addresses, more IPv6 addresses than NICs, and an IPv6 cluster address off every IPv6 subnet', async () => {
    let dir = await provision({ dataAddresses: ['198.51.100.1', '2001:db8::1'] });
    await expect(loadFlashConfig(dir, { pciDevices: NICS })).rejects.toThrow(
      /unit\.dataAddresses\[1\]: 2001:db8::1 is IPv6; a data port's IPv4 address goes here, its IPv6 address in unit\.dataAddresses6\[1\]/,
    );
    dir = await provision({ dataAddresses6: ['2001:db8:c::1', '2001:db8:5::1', '2001:db8:6::1'] });
    await expect(loadFlashConfig(dir, { pciDevices: NICS })).rejects.toThrow(/unit\.dataAddresses6 has 3 address\(es\) for 2 data NIC\(s\)/);
    const delivery = { mode: 'unicast-mac', mac: '02:65:70:00:00:01' };
    dir = await provision({ policy: { ...policy, cluster: { ...policy.cluster, delivery } }, clusterAddresses: ['2001:db8:9::1'] });
    await expect(loadFlashConfig(dir, { pciDevices: NICS })).rejects.toThrow(
      /network\.clusterAddresses\[0\]: 2001:db8:9::1 is on no data port's IPv6 subnet \(unit\.dataAddresses6\)/,
    );
  });

  it("turns a service's DSCP into QoS marks on both legs through the unit (one leg in direct-return modes)", async () => {
    const [web, api, dns] = policy.services;
    const withDscp = { ...policy, services: [{ ...web, dscp: 46 }, api, { ...dns, dscp: 10 }] };
    const dir = await provision({ policy: withDscp });
    const { config } = await loadFlashConfig(dir, { pciDevices: NICS });
    expect(config.services[0]!.qos).toEqual({ toServer: { dscp: 46 }, toClient: { dscp: 46 } });
    expect(config.services[1]!.qos).toBeUndefined();
    expect(config.services[2]!.qos).toEqual({ toServer: { dscp: 10 } });
  });
});

describe('vfioPciDevices', () => {
  it('lists the PCI addresses bound to the driver, sorted, ignoring its control files', async () => {
    const driver = join(root, 'vfio-pci');
    await mkdir(driver);
    for (const entry of ['0000:00:07.0', '0000:00:06.0']) await symlink('/nonexistent', join(driver, entry));
    for (const file of ['bind', 'unbind', 'new_id', 'module']) await writeFile(join(driver, file), '');
    expect(await vfioPciDevices(driver)).toEqual(['0000:00:06.0', '0000:00:07.0']);
  });

  it('says which directory it could not read', async () => {
    await expect(vfioPciDevices(join(root, 'missing'))).rejects.toThrow(/missing.*cannot list the data NICs bound to vfio-pci/s);
  });
});
