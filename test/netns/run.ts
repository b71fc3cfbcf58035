/* Running host commands for the test harness: failures carry the command line and its stderr, so a
 * broken topology says what the kernel refused. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export class CommandError extends Error {
  override readonly name = 'CommandError';

  constructor(
    readonly command: string,
    readonly exitCode: number | string | undefined,
    readonly stderr: string,
  ) {
    super(`${command} failed (${exitCode}): ${stderr.trim()}`);
  }
}

export async function run(file: string, args: string[], options: { timeoutMs?: number } = {}): Promise<string> {
  try {
    const { stdout } = await execFileAsync(file, args, {
      timeout: options.timeoutMs ?? 30_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const failed = error as { code?: number | string; stderr?: string; message: string };
    throw new CommandError([file, ...args].join(' '), failed.code, failed.stderr || failed.message);
  }
}

export function inNamespace(namespace: string, file: string, args: string[], options: { timeoutMs?: number } = {}): Promise<string> {
  return run('ip', ['netns', 'exec', namespace, file, ...args], options);
}
