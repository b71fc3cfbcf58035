/* edgeplane-management-network.service: gives the management NIC the static address of the flash
 * config's identity.json, so the control application can join the cluster on it.
 *   node management-network-main.js [FLASH_CONFIG_DIR]   (default /flash-config)
 * identity.json is only schema-checked here: the control application verifies its signature (and
 * the rest of the flash config) before it serves on the address. Exit 1 with the reason on stderr
 * when there is nothing sound to configure; the appliance then refuses or serves alone by itself. */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { identitySchema } from '../../flash-config/identity-schema.js';
import { parseJson } from '../../flash-config/parse-json.js';
import { MANAGEMENT_NETWORK_FILE, managementInterface, managementNetworkFile } from './management-network.js';

const run = promisify(execFile);
/** Under QEMU TCG udev creates the interface and networkd applies the address within seconds. */
const WAIT_MS = 60_000;
const POLL_MS = 250;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const dir = process.argv[2] ?? '/flash-config';
  const source = join(dir, 'identity.json');
  const identity = parseJson('identity.json', await readFile(source), identitySchema);
  const deadline = Date.now() + WAIT_MS;
  let nic = await managementInterface();
  while (nic.name === undefined) {
    if (Date.now() > deadline) throw new Error(`the management NIC ${nic.pci} has no network interface after ${WAIT_MS / 1000} s`);
    await sleep(POLL_MS);
    nic = await managementInterface();
  }
  const { name } = nic;
  await mkdir(dirname(MANAGEMENT_NETWORK_FILE), { recursive: true });
  await writeFile(MANAGEMENT_NETWORK_FILE, managementNetworkFile(identity, name, source));
  // networkctl reload needs D-Bus, which the image does not run: networkd reads the file on start.
  // --no-block: this unit is ordered after networkd, whose restart job must not wait for it.
  await run('systemctl', ['--no-block', 'restart', 'systemd-networkd.service']);
  const address = identity.unit.mgmtAddress;
  while (!(networkInterfaces()[name] ?? []).some((entry) => entry.address === address)) {
    if (Date.now() > deadline) throw new Error(`${address} is not on ${name} ${WAIT_MS / 1000} s after restarting systemd-networkd`);
    await sleep(POLL_MS);
  }
  process.stdout.write(`edgeplane: management NIC ${name} (${nic.pci}): ${address}/${identity.network.mgmtPrefixLength} from ${source}\n`);
}

main().catch((error: Error) => {
  process.stderr.write(`edgeplane: management NIC not configured from the flash config: ${error.message}\n`);
  process.exit(1);
});
