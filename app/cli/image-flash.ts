/* Writes a disk image to a target (block device or file) in 4 MiB blocks, syncs, and reads the
 * written range back to compare SHA-256 digests: a flash that does not verify is an error. */
import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';

const BLOCK = 4 * 1024 * 1024;

export type FlashProgress = (done: number, total: number, phase: 'write' | 'verify') => void;

export async function flashImage(imagePath: string, targetPath: string, progress: FlashProgress): Promise<{ bytes: number; sha256: string }> {
  const total = (await stat(imagePath)).size;
  const image = await open(imagePath, 'r');
  const target = await open(targetPath, 'r+').catch(async (error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return open(targetPath, 'w+');
    throw error;
  });
  try {
    const written = createHash('sha256');
    const buffer = Buffer.alloc(BLOCK);
    for (let offset = 0; offset < total; ) {
      const { bytesRead } = await image.read(buffer, 0, BLOCK, offset);
      if (bytesRead === 0) throw new Error(`${imagePath} ended at ${offset} of ${total} bytes`);
      written.update(buffer.subarray(0, bytesRead));
      await target.write(buffer, 0, bytesRead, offset);
      offset += bytesRead;
      progress(offset, total, 'write');
    }
    await target.sync();
    const readBack = createHash('sha256');
    for (let offset = 0; offset < total; ) {
      const { bytesRead } = await target.read(buffer, 0, Math.min(BLOCK, total - offset), offset);
      if (bytesRead === 0) throw new Error(`${targetPath} is shorter than the image (${offset} of ${total} bytes)`);
      readBack.update(buffer.subarray(0, bytesRead));
      offset += bytesRead;
      progress(offset, total, 'verify');
    }
    const expected = written.digest('hex');
    const actual = readBack.digest('hex');
    if (expected !== actual) throw new Error(`verification failed: ${targetPath} reads back sha256 ${actual}, image is ${expected}`);
    return { bytes: total, sha256: expected };
  } finally {
    await image.close();
    await target.close();
  }
}
