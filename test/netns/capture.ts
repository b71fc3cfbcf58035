/* tcpdump captures inside a test namespace: what really crossed an interface while an action ran. */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The frames of a classic little-endian pcap file (what tcpdump -w writes). */
export function readPcap(file: string): Buffer[] {
  const data = readFileSync(file);
  if (data.length < 24) return [];
  if (data.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error(`${file} is not a little-endian pcap file`);
  const frames: Buffer[] = [];
  for (let at = 24; at + 16 <= data.length; ) {
    const captured = data.readUInt32LE(at + 8);
    frames.push(data.subarray(at + 16, at + 16 + captured));
    at += 16 + captured;
  }
  return frames;
}

/** Runs action while tcpdump captures the first snapLength bytes of matching frames on a
 * namespace's interface; returns the action's result, the frames and the pcap file (for decoding
 * with scapy). */
export async function capture<T>(
  dir: string,
  namespace: string,
  iface: string,
  filter: string,
  action: () => Promise<T>,
  snapLength = 200,
): Promise<{ result: T; frames: Buffer[]; file: string }> {
  const file = path.join(dir, `${namespace}-${iface}-${Date.now()}.pcap`);
  const tcpdump = spawn('ip', ['netns', 'exec', namespace, 'tcpdump', '-i', iface, '-nn', '--immediate-mode', '-U', '-Z', 'root', '-s', String(snapLength), '-w', file, filter], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => tcpdump.once('exit', () => resolve()));
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    tcpdump.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes('listening on')) resolve();
    });
    tcpdump.once('exit', (code) => reject(new Error(`tcpdump exited with ${code}: ${stderr}`)));
  });
  try {
    const result = await action();
    tcpdump.kill('SIGINT');
    await exited;
    return { result, frames: readPcap(file), file };
  } finally {
    tcpdump.kill('SIGKILL');
  }
}
