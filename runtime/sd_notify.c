/* sd_notify.c: systemd's service notification protocol (sd_notify(3)), the
 * datagram a Type=notify service sends to $NOTIFY_SOCKET: "READY=1",
 * "STOPPING=1", "WATCHDOG=1", "EXTEND_TIMEOUT_USEC=...", "STATUS=...".
 *
 * Written by hand rather than linking Debian's libsystemd: the protocol is
 * one sendto() of a text datagram on an AF_UNIX socket (documented as a
 * stable interface in sd_notify(3), "Notes"), and the library would add a
 * dependency to every resi for that one call. Lua-free; resi.core binds it. */
#include "sd_notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Fills addr from $NOTIFY_SOCKET (a path, or "@name" for the abstract
 * namespace); returns the address length, 0 when unset, -1 when invalid. */
static socklen_t notify_address(struct sockaddr_un *addr) {
  const char *path = getenv("NOTIFY_SOCKET");
  if (path == NULL || path[0] == '\0') return 0;
  size_t n = strlen(path);
  if ((path[0] != '/' && path[0] != '@') || n >= sizeof addr->sun_path) return (socklen_t)-1;
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  memcpy(addr->sun_path, path, n);
  if (path[0] == '@') addr->sun_path[0] = '\0';
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
}

int resi_sd_notify(const char *state) {
  struct sockaddr_un addr;
  socklen_t len = notify_address(&addr);
  if (len == 0) return 0;
  if (len == (socklen_t)-1) return -EINVAL;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  ssize_t sent;
  do sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr, len);
  while (sent < 0 && errno == EINTR);
  int err = sent < 0 ? errno : 0;
  close(fd);
  return err ? -err : 1;
}
