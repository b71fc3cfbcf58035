/* Runs image/build.sh (docs/image.md) and turns its step lines ("[  12.3s] == 3/8 root filesystem")
 * into progress; the full output goes to a log file. The script's own "ERROR:" line is the failure
 * reason. Building takes root, mmdebstrap and a long time: the CLI checks what it can first. */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

export interface ImageBuildOptions {
  /** image/build.sh, or another script speaking its progress lines. */
  script: string;
  out: string;
  withoutApp: boolean;
  /** Where the script's whole output goes. */
  log: string;
}

export interface ImageBuildStep {
  done: number;
  total: number;
  title: string;
}

export class ImageBuildError extends Error {
  override readonly name = 'ImageBuildError';
}

const STEP = /^\[\s*[\d.]+s\] == (\d+)\/(\d+) (.*)$/;
const FAILURE = /^\[\s*[\d.]+s\] ERROR: (.*)$/;

/** Problems found before anything runs, each a sentence. */
export function imageBuildProblems(options: Pick<ImageBuildOptions, 'script' | 'out'>, isRoot: boolean): string[] {
  const problems: string[] = [];
  if (!existsSync(options.script)) problems.push(`the build script ${options.script} does not exist (run from an edgeplane checkout)`);
  if (existsSync(options.out) && !statSync(options.out).isDirectory()) problems.push(`--out ${options.out} exists and is not a directory`);
  if (!path.isAbsolute(options.out)) problems.push(`--out ${options.out} must be an absolute path (the build changes directories)`);
  if (!isRoot) problems.push('building an image needs root (mmdebstrap --mode=root, chroot)');
  return problems;
}

export function buildImage(options: ImageBuildOptions, onStep: (step: ImageBuildStep) => void): Promise<{ out: string; log: string }> {
  const log = createWriteStream(options.log);
  const child = spawn('bash', [options.script, ...(options.withoutApp ? ['--without-app'] : []), options.out], { stdio: ['ignore', 'pipe', 'pipe'] });
  let failure: string | undefined;
  child.stdout.pipe(log, { end: false });
  createInterface({ input: child.stderr }).on('line', (line) => {
    log.write(`${line}\n`);
    const step = STEP.exec(line);
    if (step) onStep({ done: Number(step[1]) - 1, total: Number(step[2]), title: step[3]! });
    const failed = FAILURE.exec(line);
    if (failed) failure = failed[1];
  });
  return new Promise((resolve, reject) => {
    child.once('error', (error) => reject(new ImageBuildError(`cannot run ${options.script}: ${error.message}`)));
    child.once('close', (code, signal) => {
      log.end();
      if (code === 0) return resolve({ out: options.out, log: options.log });
      const how = signal ? `was killed by ${signal}` : `exited with ${code}`;
      reject(new ImageBuildError(`image build ${how}${failure ? `: ${failure}` : ''} (full output in ${options.log})`));
    });
  });
}
