/* fs_lock.c: resi.fs_core, advisory file locks (flock(2)) for scripts that
 * must not run twice at once on the same state (rotate.lua's journal), and
 * the start time of a process (how resi.fs tells a dead writer's temp file
 * from a live one when the writer's PID has been reused).
 *
 * Written by hand because neither luv nor Lua's io library exposes flock.
 * The lock is taken without blocking (LOCK_NB): a waiting caller polls from
 * Lua with resi.sleep, so the loop never stops. The kernel drops the lock
 * when the process dies, however it dies, so a killed run never leaves a
 * stale lock behind.
 *
 * A model binding for new C modules: the C side does only the system call
 * and returns `value` or `nil, message, code` (resi_push_fail), the policy
 * (waiting, retries, messages for users) lives in the Lua wrapper, resi.fs;
 * the handle is a small class (resi_new_class) whose __gc and __close free
 * it, so a lock is released however its holder ends. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "host.h"

#define LOCK_MT "resi.fs.lock"

/* The userdata: the descriptor holding the lock, -1 once released. */
typedef struct {
  int fd;
} file_lock;

/* fs_core.lock(path) -> lock | nil, message, "busy" | nil, message, "error":
 * creates path when missing (mode 0600) and takes an exclusive lock on it. */
static int lock_take(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return resi_push_fail(L, "error", "cannot open %s: %s", path, strerror(errno));
  int rc;
  do rc = flock(fd, LOCK_EX | LOCK_NB);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    int busy = errno == EWOULDBLOCK;
    int err = errno;
    close(fd);
    if (busy) return resi_push_fail(L, "busy", "%s is locked by another process", path);
    return resi_push_fail(L, "error", "cannot lock %s: %s", path, strerror(err));
  }
  file_lock *lk = lua_newuserdatauv(L, sizeof *lk, 0); /* stack: lock */
  lk->fd = fd;
  luaL_setmetatable(L, LOCK_MT);
  return 1;
}

/* lock:unlock(): releases the lock (also run by __gc and __close); a
 * second call does nothing. */
static int lock_release(lua_State *L) {
  file_lock *lk = luaL_checkudata(L, 1, LOCK_MT);
  if (lk->fd >= 0) {
    flock(lk->fd, LOCK_UN);
    close(lk->fd);
    lk->fd = -1;
  }
  return 0;
}

/* lock:held() -> true while the lock is held. */
static int lock_held(lua_State *L) {
  file_lock *lk = luaL_checkudata(L, 1, LOCK_MT);
  lua_pushboolean(L, lk->fd >= 0);
  return 1;
}

/* Reads up to cap-1 bytes of a small file (procfs) into buf; -1 on error. */
static ssize_t read_small(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n;
  do n = read(fd, buf, cap - 1);
  while (n < 0 && errno == EINTR);
  close(fd);
  if (n >= 0) buf[n] = '\0';
  return n;
}

/* A timespec in seconds. */
static double seconds(struct timespec ts) { return (double)ts.tv_sec + ts.tv_nsec / 1e9; }

/* Sets *out to the epoch seconds this machine booted: the wall clock minus
 * CLOCK_BOOTTIME (which counts suspend too). False when a clock fails. */
static int booted_at(double *out) {
  struct timespec wall, boot;
  if (clock_gettime(CLOCK_REALTIME, &wall) < 0 || clock_gettime(CLOCK_BOOTTIME, &boot) < 0) return 0;
  *out = seconds(wall) - seconds(boot);
  return 1;
}

/* fs_core.process_start(pid) -> epoch seconds the process started, or nil
 * (no such process, or no /proc): field 22 of /proc/PID/stat is clock ticks
 * since boot, the same clock as CLOCK_BOOTTIME. The command name (field 2)
 * may hold spaces and ')', so fields are counted from the last ')'. */
static int process_start(lua_State *L) {
  lua_Integer pid = luaL_checkinteger(L, 1);
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%lld/stat", (long long)pid);
  const char *p = read_small(path, buf, sizeof buf) > 0 ? strrchr(buf, ')') : NULL;
  for (int field = 2; p && field < 22; field++) p = strchr(p + 1, ' ');
  long ticks = sysconf(_SC_CLK_TCK);
  double booted;
  if (!p || ticks <= 0 || !booted_at(&booted)) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushnumber(L, booted + strtod(p + 1, NULL) / (double)ticks); /* stack: seconds */
  return 1;
}

/* fs_core.boot_time() -> epoch seconds this machine booted (booted_at), or
 * nil. A step of the wall clock moves it with the clock, as /proc/stat's
 * btime does. */
static int boot_time(lua_State *L) {
  double booted;
  if (booted_at(&booted)) lua_pushnumber(L, booted);
  else lua_pushnil(L); /* stack: seconds or nil */
  return 1;
}

int luaopen_resi_fs_core(lua_State *L) {
  static const luaL_Reg methods[] = {{"unlock", lock_release}, {"held", lock_held}, {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", lock_release}, {"__close", lock_release}, {NULL, NULL}};
  resi_new_class(L, LOCK_MT, methods, meta);
  lua_newtable(L); /* stack: fs_core */
  lua_pushcfunction(L, lock_take);
  lua_setfield(L, -2, "lock");
  lua_pushcfunction(L, process_start);
  lua_setfield(L, -2, "process_start");
  lua_pushcfunction(L, boot_time);
  lua_setfield(L, -2, "boot_time"); /* stack: fs_core */
  return 1;
}
