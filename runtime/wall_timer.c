/* wall_timer.c: a one-shot timer armed at a wall-clock time, for the jobs
 * scheduler's wake-ups (resi.core.wall_timer).
 *
 * libuv's timers count whole milliseconds from a cached loop time, so a
 * wake-up is up to ~2 ms late, and they follow the monotonic clock, so a
 * wall-clock step goes unnoticed until the next wake-up. This is a Linux
 * timerfd on CLOCK_REALTIME armed with TFD_TIMER_ABSTIME (it expires at the
 * given epoch time, to the kernel timer's precision) and
 * TFD_TIMER_CANCEL_ON_SET (a step of the wall clock wakes it at once: read(2)
 * fails with ECANCELED), watched by a uv_poll. It follows core_timer's
 * pattern (core.c): the task is anchored with its token and woken once. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "wall_timer.h"

#define WALL_TIMER_MT "resi.core.wall_timer"

/* A pending wall-clock timer. The userdata holds a pointer so the uv handle
 * can outlive the userdata until its close callback runs. */
typedef struct {
  uv_poll_t poll; /* first member: the close callback frees the struct */
  int fd;
  lua_State *L;
  int task_ref;
  lua_Integer token;
  void **owner; /* the userdata slot that points here, cleared on release */
} wall_timer;

/* Close callback: closes the timerfd and frees the timer. */
static void wall_timer_closed(uv_handle_t *handle) {
  wall_timer *t = (wall_timer *)handle;
  close(t->fd);
  free(t);
}

/* Releases a timer: wakes its task with `why` (or, why NULL, unanchors it
 * without waking) and closes the poll and the fd. */
static void wall_timer_release(wall_timer *t, const char *why) {
  uv_poll_stop(&t->poll);
  if (t->owner) *t->owner = NULL;
  if (why) {
    lua_pushstring(t->L, why); /* stack: why */
    resi_wake(t->L, t->task_ref, t->token, 1);
  } else {
    luaL_unref(t->L, LUA_REGISTRYINDEX, t->task_ref);
  }
  uv_close((uv_handle_t *)&t->poll, wall_timer_closed);
}

/* Poll callback: the timer expired ("due") or the wall clock was set
 * ("clock_changed"); a spurious wake-up keeps waiting. */
static void wall_timer_cb(uv_poll_t *handle, int status, int events) {
  (void)events;
  wall_timer *t = (wall_timer *)handle;
  uint64_t expirations;
  if (status < 0) {
    wall_timer_release(t, "due"); /* the poll failed: wake rather than hang; the caller rechecks the time */
    return;
  }
  ssize_t n = read(t->fd, &expirations, sizeof expirations);
  if (n == (ssize_t)sizeof expirations) {
    wall_timer_release(t, "due");
  } else if (n < 0 && errno == ECANCELED) {
    wall_timer_release(t, "clock_changed");
  } else if (!(n < 0 && (errno == EAGAIN || errno == EINTR))) {
    wall_timer_release(t, "due");
  }
}

/* core.wall_timer(epoch_seconds, task, token) -> handle | nil, message, code:
 * wakes task with token and "due" once the wall clock reaches epoch_seconds
 * (at once when it has), or with "clock_changed" when the wall clock is set
 * before that. */
int resi_core_wall_timer(lua_State *L) {
  lua_Number at = luaL_checknumber(L, 1);
  luaL_checkany(L, 2);
  lua_Integer token = luaL_checkinteger(L, 3);
  if (!(at >= 0)) at = 0; /* also catches NaN */
  if (at > 1e15) at = 1e15;
  int fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) return resi_push_fail(L, "error", "timerfd_create: %s", strerror(errno));
  struct itimerspec spec = {0};
  double sec = floor(at);
  spec.it_value.tv_sec = (time_t)sec;
  spec.it_value.tv_nsec = (long)((at - sec) * 1e9);
  if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1; /* 0 would disarm */
  if (timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &spec, NULL) < 0) {
    int e = errno;
    close(fd);
    return resi_push_fail(L, "error", "timerfd_settime: %s", strerror(e));
  }
  void **ud = resi_new_handle(L, WALL_TIMER_MT); /* stack: .., ud */
  wall_timer *t = malloc(sizeof *t);
  if (t == NULL) {
    close(fd);
    return luaL_error(L, "resi: out of memory");
  }
  if (uv_poll_init(resi_loop(L), &t->poll, fd) != 0) {
    close(fd);
    free(t);
    return resi_push_fail(L, "error", "uv_poll_init on a timerfd failed");
  }
  t->fd = fd;
  t->L = resi_main_state(L);
  t->token = token;
  lua_pushvalue(L, 2); /* stack: .., ud, task */
  t->task_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* stack: .., ud */
  t->owner = ud;
  *ud = t;
  uv_poll_start(&t->poll, UV_READABLE, wall_timer_cb);
  return 1;
}

/* wall_timer:stop(): cancels a pending timer; the task is not woken. */
static int wall_timer_stop(lua_State *L) {
  void **ud = luaL_checkudata(L, 1, WALL_TIMER_MT);
  if (*ud) wall_timer_release(*ud, NULL);
  return 0;
}

/* Registers the wall timer's class (called by luaopen_resi_core). */
void resi_wall_timer_class(lua_State *L) {
  static const luaL_Reg methods[] = {{"stop", wall_timer_stop}, {NULL, NULL}};
  resi_new_gc_class(L, WALL_TIMER_MT, methods, wall_timer_stop);
}
