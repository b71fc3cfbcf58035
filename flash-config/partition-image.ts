import { execFile } from 'node:child_process';
import { mkdir, readdir, rm, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FlashConfigError } from './flash-config-error.js';
import { PARTITION_LABEL } from './layout.js';

const run = promisify(execFile);

// ext4 rather than FAT: it keeps unit.key at mode 0600 and root ownership on the appliance, and
// e2fsprogs can both build (mke2fs -d) and read (debugfs) an image without loop devices or root.
const DEFAULT_SIZE_MIB = 4;

async function tool(image: string, command: string, args: string[]): Promise<string> {
  try {
    // e2fsprogs installs into /usr/sbin, which non-login shells and CI runners often leave off PATH.
    const { stdout } = await run(command, args, { env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` } });
    return stdout;
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: string };
    const why = failure.code === 'ENOENT' ? `${command} not found (install e2fsprogs)` : (failure.stderr ?? failure.message).trim();
    throw new FlashConfigError(image, `${command} failed: ${why}`, { cause: error });
  }
}

/** Builds an ext4 image labelled EPFLASHCFG whose root holds exactly the files of `dir`. */
export async function writePartitionImage(dir: string, image: string, sizeMiB = DEFAULT_SIZE_MIB): Promise<void> {
  await tool(image, 'mke2fs', [
    '-q', '-F', '-t', 'ext4',
    '-O', '^has_journal', // read-mostly partition: no journal, every block for data
    '-L', PARTITION_LABEL,
    '-E', 'root_owner=0:0',
    '-d', dir,
    image, `${sizeMiB}M`,
  ]);
}

/** Copies the files of a flash-config image into `outDir` without mounting it. */
export async function extractPartitionImage(image: string, outDir: string): Promise<void> {
  const label = (await tool(image, 'e2label', [image])).trim();
  if (label !== PARTITION_LABEL) {
    throw new FlashConfigError(image, `filesystem label is '${label}', expected '${PARTITION_LABEL}'`);
  }
  await mkdir(outDir, { recursive: true });
  await tool(image, 'debugfs', ['-R', `rdump / "${outDir}"`, image]);
  await rm(join(outDir, 'lost+found'), { recursive: true, force: true });
  if ((await readdir(outDir)).length === 0) throw new FlashConfigError(image, 'image holds no files');
}

/** Runs `use` on a temporary extraction of the image and removes it afterwards. */
export async function withExtractedImage<T>(image: string, use: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'flash-config-'));
  try {
    await extractPartitionImage(image, join(dir, 'root'));
    return await use(join(dir, 'root'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
