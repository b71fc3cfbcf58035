import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FlashConfigError } from './flash-config-error.js';
import { createAuthority, loadAuthority, revokeSerial } from './authority.js';
import { provisionUnit } from './unit-provisioning.js';
import { writePolicySignature } from './policy-signing.js';
import { verifyFlashConfig, type VerifiedFlashConfig } from './verify-flash-config.js';
import { withExtractedImage, writePartitionImage } from './partition-image.js';
import { flashConfigJsonSchemas } from './json-schemas.js';
import { validityFromNow } from './certificate-issuer.js';

/** Exit codes: scripts (and the boot unit) branch on them. */
export const EXIT = { ok: 0, refused: 1, usage: 2, internal: 70 } as const;

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

const integer = (min: number, max: number) => (value: string) => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
    throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
  }
  return parsed;
};
const collect = (value: string, previous: string[] = []) => [...previous, value];
const instant = (value: string) => {
  const parsed = new Date(value);
  if (Number.isNaN(parsed.getTime())) throw new InvalidArgumentError('must be an ISO 8601 date-time');
  return parsed;
};

function describeVerified(target: string, verified: VerifiedFlashConfig): string[] {
  const { identity, policy, unit } = verified;
  return [
    `OK ${target}: unit ${identity.unit.id} of cluster ${identity.cluster.name} (${identity.cluster.id})`,
    `  config version ${identity.configVersion}, ${policy.services.length} service(s): ${policy.services.map((s) => s.name).join(', ') || '-'}`,
    `  management ${identity.unit.mgmtAddress}/${identity.network.mgmtPrefixLength}, data ${[...identity.unit.dataAddresses, ...(identity.unit.dataAddresses6 ?? [])].join(', ')}`,
    `  certificate serial ${unit.serialNumber}, valid until ${unit.notAfter.toISOString()}`,
    `  ${verified.revokedSerials.size} revoked serial(s) known`,
  ];
}

async function verifyTarget(target: string, now: Date | undefined): Promise<VerifiedFlashConfig> {
  const options = now ? { now } : {};
  const kind = await stat(target).catch((error: NodeJS.ErrnoException) => {
    throw new FlashConfigError(target, `cannot open (${error.code ?? error.message})`);
  });
  return kind.isDirectory()
    ? verifyFlashConfig(target, options)
    : withExtractedImage(target, (root) => verifyFlashConfig(root, options));
}

function buildProgram(io: CliIo): Command {
  const program = new Command('flash-config')
    .description('Provision and verify edgeplane per-unit flash configs')
    .exitOverride()
    .configureOutput({ writeOut: (text) => io.out(text.trimEnd()), writeErr: (text) => io.err(text.trimEnd()) });

  const authority = program.command('authority').description('offline cluster authority (CA and policy key)');
  authority
    .command('init')
    .description('create a cluster CA and policy-signing key in a new directory')
    .requiredOption('--out <dir>', 'authority directory to create')
    .requiredOption('--cluster <name>', 'cluster name (lowercase DNS label)')
    .addOption(new Option('--valid-days <n>', 'CA validity in days').argParser(integer(1, 36500)).default(7300))
    .action(async (options: { out: string; cluster: string; validDays: number }) => {
      const description = await createAuthority({ dir: options.out, clusterName: options.cluster, validDays: options.validDays });
      io.out(`created authority for cluster ${description.clusterName} (${description.clusterId}) in ${options.out}`);
      io.out('keep ca.key and policy.key offline; only certificates and signed files go onto units');
    });
  authority
    .command('revoke')
    .description('add a unit certificate serial to the signed revocation list')
    .requiredOption('--authority <dir>', 'authority directory')
    .requiredOption('--serial <hex>', 'certificate serial number (hex)')
    .option('--unit-id <id>', 'unit the serial belonged to, for the record')
    .action(async (options: { authority: string; serial: string; unitId?: string }) => {
      const list = await revokeSerial(options.authority, options);
      io.out(`revoked ${options.serial}; revoked.json now lists ${list.revoked.length} serial(s); re-provision or sync units to apply`);
    });

  program
    .command('unit')
    .description('per-unit flash configs')
    .command('create')
    .description('issue a unit certificate and write its complete flash config')
    .requiredOption('--authority <dir>', 'authority directory')
    .requiredOption('--unit-id <id>', 'unit id (lowercase DNS label)')
    .requiredOption('--mgmt-addr <ip>', 'management address')
    .requiredOption('--data-addr <ip>', 'data-plane address (repeatable)', collect)
    .option('--data-addr6 <ip>', "data NIC's IPv6 address, in the order of --data-addr (repeatable)", collect, [])
    .requiredOption('--policy <file>', 'policy.json to sign and install')
    .requiredOption('--out <dir>', 'output directory (must be empty or absent)')
    .option('--image <file>', 'also write an ext4 partition image labelled EPFLASHCFG')
    .addOption(new Option('--valid-days <n>', 'unit certificate validity in days').argParser(integer(1, 36500)).default(1825))
    .addOption(new Option('--mgmt-prefix <n>', 'management prefix length').argParser(integer(0, 128)).default(24))
    .option('--mgmt-gateway <ip>', 'management default gateway')
    .addOption(new Option('--data-prefix <n>', 'data prefix length').argParser(integer(0, 128)).default(24))
    .addOption(new Option('--data-prefix6 <n>', 'IPv6 data prefix length (default 64)').argParser(integer(0, 128)))
    .option('--cluster-addr <ip>', 'shared cluster address (repeatable)', collect, [])
    .addOption(new Option('--cluster-port <n>', 'cluster keepalive/sync UDP port').argParser(integer(1, 65535)).default(7946))
    .action(
      async (options: {
        authority: string; unitId: string; mgmtAddr: string; dataAddr: string[]; dataAddr6: string[]; policy: string;
        out: string; image?: string; validDays: number; mgmtPrefix: number; mgmtGateway?: string; dataPrefix: number;
        dataPrefix6?: number;
        clusterAddr: string[]; clusterPort: number;
      }) => {
        const policyBytes = await readFile(options.policy).catch((error: NodeJS.ErrnoException) => {
          throw new FlashConfigError(options.policy, `cannot read policy (${error.code ?? error.message})`);
        });
        const provisioned = await provisionUnit(
          await loadAuthority(options.authority),
          {
            unitId: options.unitId,
            mgmtAddress: options.mgmtAddr,
            dataAddresses: options.dataAddr,
            dataAddresses6: options.dataAddr6,
            network: {
              mgmtPrefixLength: options.mgmtPrefix,
              ...(options.mgmtGateway ? { mgmtGateway: options.mgmtGateway } : {}),
              dataPrefixLength: options.dataPrefix,
              ...(options.dataPrefix6 !== undefined ? { dataPrefixLength6: options.dataPrefix6 } : {}),
              clusterAddresses: options.clusterAddr,
              clusterPort: options.clusterPort,
            },
            policyBytes,
            policySource: options.policy,
            validity: validityFromNow(options.validDays),
          },
          options.out,
        );
        io.out(`wrote flash config for unit ${options.unitId} to ${options.out} (certificate serial ${provisioned.unitSerial})`);
        if (options.image) {
          await writePartitionImage(options.out, options.image);
          io.out(`wrote partition image ${options.image}`);
        }
      },
    );

  program
    .command('policy')
    .description('cluster policy')
    .command('sign')
    .description('validate a policy and write its detached signature')
    .requiredOption('--authority <dir>', 'authority directory')
    .requiredOption('--policy <file>', 'policy.json to sign')
    .option('--out <file>', 'signature file (default: <policy>.sig)')
    .action(async (options: { authority: string; policy: string; out?: string }) => {
      const bytes = await readFile(options.policy).catch((error: NodeJS.ErrnoException) => {
        throw new FlashConfigError(options.policy, `cannot read policy (${error.code ?? error.message})`);
      });
      const out = options.out ?? `${options.policy}.sig`;
      const policy = await writePolicySignature(await loadAuthority(options.authority), bytes, options.policy, out);
      io.out(`signed ${options.policy} (config version ${policy.configVersion}) -> ${out}`);
    });

  program
    .command('verify')
    .description('verify a flash config directory or partition image as the appliance does at boot')
    .argument('<target>', 'flash config directory or image file')
    .option('--at <time>', 'verify as of this ISO 8601 time instead of now', instant)
    .action(async (target: string, options: { at?: Date }) => {
      for (const line of describeVerified(target, await verifyTarget(target, options.at))) io.out(line);
    });

  program
    .command('schema')
    .description('write the JSON Schema files for identity.json, policy.json, revoked.json, authority.json')
    .requiredOption('--out <dir>', 'directory to write *.schema.json into')
    .action(async (options: { out: string }) => {
      await mkdir(options.out, { recursive: true });
      for (const [file, schema] of Object.entries(flashConfigJsonSchemas())) {
        await writeFile(join(options.out, file), JSON.stringify(schema, null, 2) + '\n');
        io.out(`wrote ${join(options.out, file)}`);
      }
    });

  return program;
}

/** Runs the CLI on user arguments (without node and script) and returns the process exit code. */
export async function runCli(args: readonly string[], io: CliIo): Promise<number> {
  try {
    await buildProgram(io).parseAsync([...args], { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof FlashConfigError) {
      io.err(`REFUSED ${error.message}`);
      return EXIT.refused;
    }
    io.err(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return EXIT.internal;
  }
}
