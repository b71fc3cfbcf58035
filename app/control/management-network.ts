/* The management NIC's static address from the flash config (identity.json): the cluster network
 * the control application joins on (docs/control.md "Cluster"). Run at boot by
 * edgeplane-management-network.service (management-network-main.ts) before the appliance starts;
 * without a flash config the image's DHCP/link-local file applies. */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isIPv4 } from 'node:net';
import type { Identity } from '../../flash-config/index.js';

export const SYS_PCI_DEVICES = '/sys/bus/pci/devices';
/** Sorts before the image's 10-management.network (DHCP), so networkd applies this one. */
export const MANAGEMENT_NETWORK_FILE = '/run/systemd/network/05-edgeplane-management.network';

/** The systemd-networkd file giving interface `name` the identity's management address. */
export function managementNetworkFile(identity: Identity, name: string, source: string): string {
  const { mgmtAddress } = identity.unit;
  const { mgmtPrefixLength, mgmtGateway } = identity.network;
  const lines = [
    `# Written at boot by edgeplane-management-network.service from ${source}`,
    '[Match]',
    `Name=${name}`,
    '',
    '[Network]',
    `Address=${mgmtAddress}/${mgmtPrefixLength}`,
    ...(mgmtGateway ? [`Gateway=${mgmtGateway}`] : []),
    'DHCP=no',
    'LinkLocalAddressing=ipv6',
  ];
  // Cluster discovery and keepalives are IPv4 multicast: their route must leave by this NIC even
  // when the default route (if any) is elsewhere.
  if (isIPv4(mgmtAddress)) lines.push('', '[Route]', 'Destination=224.0.0.0/4', 'Scope=link');
  return `${lines.join('\n')}\n`;
}

/** The kernel name of the management NIC: the Ethernet device with the lowest PCI address (the rule
 * bind-data-nics follows: the others go to vfio-pci); undefined while it has no network interface. */
export async function managementInterface(sysPciDevices = SYS_PCI_DEVICES): Promise<{ pci: string; name?: string }> {
  const devices = (await readdir(sysPciDevices)).sort();
  for (const pci of devices) {
    const pciClass = (await readFile(join(sysPciDevices, pci, 'class'), 'utf8')).trim();
    if (!pciClass.startsWith('0x0200')) continue;
    return { pci, ...(await netdevOf(join(sysPciDevices, pci))) };
  }
  throw new Error(`no Ethernet controller (PCI class 0x0200) in ${sysPciDevices}`);
}

/** The interface under a PCI device: `net/<name>`, or `virtio<N>/net/<name>` for virtio-net. */
async function netdevOf(device: string): Promise<{ name?: string }> {
  const entries = await readdir(device);
  const parents = [device, ...entries.filter((entry) => /^virtio\d+$/.test(entry)).map((entry) => join(device, entry))];
  for (const parent of parents) {
    const names = await readdir(join(parent, 'net')).catch(() => [] as string[]);
    if (names[0] !== undefined) return { name: names[0] };
  }
  return {};
}
