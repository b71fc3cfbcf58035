import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { extractPartitionImage, withExtractedImage, writePartitionImage } from './partition-image.js';
import { verifyFlashConfig } from './verify-flash-config.js';
import { provisionUnit } from './unit-provisioning.js';
import { UNIT_FILES } from './layout.js';
import { scratchAuthority, unitRequest } from './test-support/fixtures.js';
import { expectFlashError } from './test-support/expect-flash-error.js';

let scratch: Awaited<ReturnType<typeof scratchAuthority>>;
beforeAll(async () => {
  scratch = await scratchAuthority();
});
afterAll(() => scratch.cleanup());

describe('flash-config partition image', () => {
  it('round-trips a unit config through an ext4 image labelled EPFLASHCFG', async () => {
    const dir = join(scratch.root, 'unit');
    await provisionUnit(scratch.authority, unitRequest('unit-7'), dir);
    const image = join(scratch.root, 'unit.img');
    await writePartitionImage(dir, image);
    expect(execFileSync('blkid', ['-o', 'export', image], { encoding: 'utf8' })).toMatch(/LABEL=EPFLASHCFG[\s\S]*TYPE=ext4/);

    const out = join(scratch.root, 'extracted');
    await extractPartitionImage(image, out);
    expect((await readdir(out)).sort()).toEqual(Object.values(UNIT_FILES).sort());
    for (const file of Object.values(UNIT_FILES)) {
      expect(await readFile(join(out, file))).toEqual(await readFile(join(dir, file)));
    }
    expect((await stat(join(out, UNIT_FILES.unitKey))).mode & 0o777).toBe(0o600);

    const verified = await withExtractedImage(image, (root) => verifyFlashConfig(root));
    expect(verified.identity.unit.id).toBe('unit-7');
  });

  it('refuses a file that is not an ext4 image', async () => {
    const junk = join(scratch.root, 'junk.img');
    await writeFile(junk, Buffer.alloc(65536, 0x5a));
    await expectFlashError(extractPartitionImage(junk, join(scratch.root, 'junk-out')), junk, /e2label failed: .*Bad magic number/);
  });

  it('refuses an ext4 image with another label', async () => {
    const other = join(scratch.root, 'other.img');
    execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'DATA', other, '2M'], { env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
    await expectFlashError(extractPartitionImage(other, join(scratch.root, 'other-out')), other, /filesystem label is 'DATA', expected 'EPFLASHCFG'/);
  });
});
