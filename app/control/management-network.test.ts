import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Identity } from '../../flash-config/index.js';
import { managementInterface, managementNetworkFile } from './management-network.js';

const identity: Identity = {
  schemaVersion: 1,
  cluster: { name: 'lab', id: '1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b' },
  configVersion: 1,
  unit: { id: 'unit1', mgmtAddress: '192.0.2.11', dataAddresses: ['198.51.100.2'] },
  network: { mgmtPrefixLength: 24, mgmtGateway: '192.0.2.254', dataPrefixLength: 24, clusterAddresses: [], clusterPort: 7946 },
};

describe('managementNetworkFile', () => {
  it('gives the NIC the static address, gateway and the multicast route of cluster discovery, no DHCP', () => {
    const file = managementNetworkFile(identity, 'enp0s3', '/flash-config/identity.json');
    expect(file).toContain('[Match]\nName=enp0s3\n');
    expect(file).toContain('Address=192.0.2.11/24\nGateway=192.0.2.254\nDHCP=no\n');
    expect(file).toContain('[Route]\nDestination=224.0.0.0/4\n');
  });

  it('leaves out the gateway when there is none, and the IPv4 multicast route for an IPv6 address', () => {
    const { mgmtGateway: _, ...network } = identity.network;
    const v6 = { ...identity, unit: { ...identity.unit, mgmtAddress: '2001:db8::11' }, network: { ...network, mgmtPrefixLength: 64 } };
    const file = managementNetworkFile(v6, 'enp0s3', 'identity.json');
    expect(file).toContain('Address=2001:db8::11/64\n');
    expect(file).not.toMatch(/Gateway=|\[Route\]/);
  });
});

describe('managementInterface', () => {
  let sys: string;
  beforeAll(async () => {
    sys = await mkdtemp(join(tmpdir(), 'mgmt-nic-'));
    const device = async (pci: string, pciClass: string, net?: string) => {
      await mkdir(join(sys, pci), { recursive: true });
      await writeFile(join(sys, pci, 'class'), `${pciClass}\n`);
      if (net) await mkdir(join(sys, pci, net), { recursive: true });
    };
    await device('0000:00:01.0', '0x060100');
    await device('0000:00:07.0', '0x020000');
    await device('0000:00:03.0', '0x020000', 'virtio0/net/enp0s3');
    await device('0000:00:04.0', '0x010000');
  });
  afterAll(() => rm(sys, { recursive: true, force: true }));

  it('is the Ethernet controller with the lowest PCI address, with its interface under virtio<N>/net', async () => {
    expect(await managementInterface(sys)).toEqual({ pci: '0000:00:03.0', name: 'enp0s3' });
  });

  it('has no name until the driver created the interface, and says when there is no NIC', async () => {
    await rm(join(sys, '0000:00:03.0', 'virtio0'), { recursive: true });
    expect(await managementInterface(sys)).toEqual({ pci: '0000:00:03.0' });
    const empty = await mkdtemp(join(tmpdir(), 'mgmt-nic-none-'));
    await expect(managementInterface(empty)).rejects.toThrow(/no Ethernet controller \(PCI class 0x0200\) in .*mgmt-nic-none-/);
    await rm(empty, { recursive: true });
  });
});
