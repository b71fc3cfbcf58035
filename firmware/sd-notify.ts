/* systemd's notify protocol (sd_notify(3)): one datagram to $NOTIFY_SOCKET. Node.js has no unix
 * datagram sockets, so the native addon sends it (firmware/native/src/sd_notify.c) - in process,
 * a syscall, where spawning systemd-notify forks the whole control application. */
import { constants } from 'node:os';
import { loadAddon } from './dataplane.js';

const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, value]) => [value, name]));

export function sdNotify(socketPath: string, state: string): void {
  const rc = loadAddon().sdNotify(socketPath, state);
  if (rc !== 0) {
    const name = ERRNO_NAMES.get(-rc) ?? `errno ${-rc}`;
    throw new Error(rc === -constants.errno.EINVAL ? `NOTIFY_SOCKET "${socketPath}" is not an absolute path or @abstract name` : `sending to NOTIFY_SOCKET ${socketPath}: ${name}`);
  }
}
