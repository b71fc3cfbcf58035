/* systemd's service notification (sd_notify(3)) without libsystemd: the protocol is one datagram
 * to the AF_UNIX socket named by $NOTIFY_SOCKET, which systemd documents as stable for
 * reimplementation. Plain C, no DPDK: the control application calls it through the addon. */
#ifndef EP_SD_NOTIFY_H
#define EP_SD_NOTIFY_H

#ifdef __cplusplus
extern "C" {
#endif

/* Sends `state` (e.g. "READY=1\nSTATUS=..." ) to `socket_path` (a path, or "@name" for the
 * abstract namespace). Returns 0 when sent, or a negative errno: -EINVAL for an empty, relative
 * or too long socket name, otherwise the error of socket(2) / sendto(2). */
int ep_sd_notify(const char *socket_path, const char *state);

#ifdef __cplusplus
}
#endif

#endif
