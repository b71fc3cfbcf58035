/* In process, a notification costs one sendto(2): the service watchdog's ping must not depend on
 * forking the control application to run systemd-notify, which takes seconds on a starved guest. */
#include "sd_notify.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int ep_sd_notify(const char *socket_path, const char *state)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t len = socket_path ? strlen(socket_path) : 0;
	if (len < 2 || len >= sizeof(addr.sun_path) || (socket_path[0] != '/' && socket_path[0] != '@'))
		return -EINVAL;
	memcpy(addr.sun_path, socket_path, len);
	if (addr.sun_path[0] == '@')
		addr.sun_path[0] = '\0'; /* abstract namespace: the name is not NUL-terminated */
	socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&addr, addr_len) < 0)
		rc = -errno;
	close(fd);
	return rc;
}
