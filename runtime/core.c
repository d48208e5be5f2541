/* core.c: resi.core, the C half of the task scheduler.
 *
 * The scheduler itself (task objects, the ready queue, cancellation) is Lua
 * in lualib/resi/task.lua. This file gives it what only C can: the drain
 * step run from the loop, one-shot timers that wake a task (and, in
 * wall_timer.c, one armed at a wall-clock time), clocks, a way
 * to stop the loop, random bytes, and how an error becomes text. Waking
 * never resumes Lua code: it only queues the task; the queue is run from
 * drain_cb, one place, on the main thread.
 *
 * The ready queue is task.lua's table with its ends kept here, so that a C
 * completion (resi_wake) is queued without calling into Lua: core_wake does
 * what task.lua's wake does for a waiting task (the stale-token check, the
 * token bump, state "ready") and appends the values; the drain step hands
 * task.lua's drain the range of entries to run, one Lua entry per loop turn.
 *
 * For new C modules: a wait is core_timer's pattern. Anchor the task in the
 * registry with its token, start the operation, and on completion push the
 * results and call resi_wake (resi.h), which releases the anchor exactly once.
 * It is the one way to resume a task from C; never lua_resume a coroutine. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bytecode.h"
#include "host.h"
#include "sd_notify.h"
#include "wall_timer.h"

#define CORE_STATE "resi.core.state"
#define STATE_MT "resi.core.drain_step"
#define TIMER_MT "resi.core.timer"

/* The drain step: an idle handle started whenever tasks are ready, and the
 * ready queue's ends. An entry is a task and false (a task to run with its
 * wake_args), or a task, n and the n values it was woken with. */
typedef struct {
  uv_idle_t idle; /* first member: callbacks cast the handle back */
  lua_State *L;   /* the main thread */
  resi_scheduler sched; /* published at RESI_REG_SCHED */
  int queue_ref;        /* task.lua's queue table, LUA_NOREF before set_scheduler */
  lua_Integer head, tail; /* the entries not yet handed to drain: [head, tail] */
} core_state;

/* A one-shot timer that wakes a task. The userdata holds a pointer so the
 * uv handle can outlive the userdata until its close callback runs. */
typedef struct {
  uv_timer_t timer; /* first member */
  lua_State *L;
  int task_ref;
  lua_Integer token;
  void **owner; /* the userdata slot that points here, cleared on release */
} wake_timer;

/* Idle callback: stops itself and hands the queued entries to the
 * scheduler's drain (entries queued meanwhile run on the next turn). */
static void drain_cb(uv_idle_t *idle) {
  core_state *cs = (core_state *)idle;
  lua_State *L = cs->L;
  uv_idle_stop(idle);
  lua_Integer first = cs->head, last = cs->tail;
  if (first > last) return;
  cs->head = last + 1;
  lua_getfield(L, LUA_REGISTRYINDEX, "resi.drain"); /* stack: drain */
  lua_pushinteger(L, first);
  lua_pushinteger(L, last); /* stack: drain, first, last */
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    fprintf(stderr, "resi: scheduler failure: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    uv_stop(idle->loop);
  }
  if (cs->head > cs->tail) cs->head = 1, cs->tail = 0; /* empty: start the table over */
}

/* Makes the loop run the ready queue on its next turn. */
static void kick(core_state *cs) {
  if (!uv_is_active((uv_handle_t *)&cs->idle)) uv_idle_start(&cs->idle, drain_cb);
}

/* Appends the task at idx and a marker (false, or the number of values) to
 * the queue table on top of the stack; returns the next free index. */
static lua_Integer queue_entry(lua_State *L, core_state *cs, int idx, int nvalues) {
  lua_Integer i = cs->tail;
  lua_pushvalue(L, idx);
  lua_rawseti(L, -2, i + 1);
  if (nvalues < 0) lua_pushboolean(L, 0);
  else lua_pushinteger(L, nvalues);
  lua_rawseti(L, -2, i + 2);
  return i + 3;
}

/* Appends the n values at base+1.. to the queue table on top of the stack
 * from index i on, and makes them the queue's end. */
static void queue_values(lua_State *L, core_state *cs, lua_Integer i, int base, int n) {
  for (int k = 1; k <= n; k++) {
    lua_pushvalue(L, base + k);
    lua_rawseti(L, -2, i + k - 1);
  }
  cs->tail = i + n - 1;
  kick(cs);
}

/* resi_wake's implementation (resi.h). For a task that waits with this
 * token it does what task.lua's wake does, in C: token + 1, on_cancel
 * cleared, state "ready", the values queued. A stale token is dropped; any
 * other case (the operation completed before its task yielded) goes
 * through task.lua's wake. Pops the nargs values; releases task_ref. */
static void core_wake(resi_scheduler *s, lua_State *L, int task_ref, lua_Integer token, int nargs) {
  core_state *cs = s->data;
  int base = lua_gettop(L) - nargs;
  lua_rawgeti(L, LUA_REGISTRYINDEX, task_ref); /* stack: args.., task */
  luaL_unref(L, LUA_REGISTRYINDEX, task_ref);
  int task = base + nargs + 1;
  if (lua_type(L, task) == LUA_TTABLE) {
    int current = lua_getfield(L, task, "token") == LUA_TNUMBER && lua_tointeger(L, -1) == token;
    lua_getfield(L, task, "state"); /* stack: args.., task, token, state */
    const char *state = lua_tostring(L, -1);
    int waiting = state && strcmp(state, "waiting") == 0;
    lua_pop(L, 2); /* stack: args.., task */
    if (!current) { /* cancelled, timed out or already woken */
      lua_settop(L, base);
      return;
    }
    if (waiting && cs->queue_ref != LUA_NOREF) {
      lua_pushinteger(L, token + 1);
      lua_setfield(L, task, "token");
      lua_pushnil(L);
      lua_setfield(L, task, "on_cancel");
      lua_pushliteral(L, "ready");
      lua_setfield(L, task, "state");
      lua_rawgeti(L, LUA_REGISTRYINDEX, cs->queue_ref); /* stack: args.., task, queue */
      queue_values(L, cs, queue_entry(L, cs, task, nargs), base, nargs);
      lua_settop(L, base); /* stack: (as before the args) */
      return;
    }
  }
  lua_getfield(L, LUA_REGISTRYINDEX, RESI_REG_WAKE); /* stack: args.., task, wake */
  lua_insert(L, base + 1);                          /* stack: wake, args.., task */
  lua_insert(L, base + 2);                          /* stack: wake, task, args.. */
  lua_pushinteger(L, token);
  lua_insert(L, base + 3); /* stack: wake, task, token, args.. */
  if (lua_pcall(L, nargs + 2, 0, 0) != LUA_OK) {
    /* wake only queues; failing here means memory is exhausted */
    fprintf(stderr, "resi: scheduler wake failed: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
}

/* The per-state record, created on first use. */
static core_state *get_state(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, CORE_STATE); /* stack: ud|nil */
  core_state **slot = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return slot ? *slot : NULL;
}

/* __gc of the per-state record: closes the idle handle. */
static int state_gc(lua_State *L) {
  core_state **slot = lua_touserdata(L, 1);
  if (*slot) {
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, RESI_REG_SCHED); /* a late resi_wake finds no scheduler */
    uv_close((uv_handle_t *)&(*slot)->idle, resi_free_on_close);
    *slot = NULL;
  }
  return 0;
}

/* core.set_scheduler(wake, drain, queue): registers the Lua scheduler's
 * entry points, wake(task, token, ...) and drain(first, last), and the
 * table the ready queue lives in. */
static int core_set_scheduler(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_checktype(L, 3, LUA_TTABLE);
  core_state *cs = get_state(L);
  lua_pushvalue(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, RESI_REG_WAKE);
  lua_pushvalue(L, 2);
  lua_setfield(L, LUA_REGISTRYINDEX, "resi.drain");
  lua_pushvalue(L, 3);
  luaL_unref(L, LUA_REGISTRYINDEX, cs->queue_ref);
  cs->queue_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* stack: wake, drain, queue */
  cs->head = 1, cs->tail = 0;
  return 0;
}

/* The per-state record, for core.push and core.push_values. */
static core_state *checked_state(lua_State *L) {
  core_state *cs = get_state(L);
  if (cs == NULL || cs->queue_ref == LUA_NOREF) luaL_error(L, "resi.core: the scheduler is not set up");
  return cs;
}

/* core.push(task): queues a ready task, run with its wake_args. */
static int core_push(lua_State *L) {
  core_state *cs = checked_state(L);
  luaL_checkany(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, cs->queue_ref); /* stack: task, queue */
  cs->tail = queue_entry(L, cs, 1, -1) - 1;
  kick(cs);
  return 0;
}

/* core.push_values(task, ...): queues a woken task with the values it is
 * resumed with (no table per wake-up). */
static int core_push_values(lua_State *L) {
  core_state *cs = checked_state(L);
  luaL_checkany(L, 1);
  int n = lua_gettop(L) - 1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, cs->queue_ref); /* stack: task, values.., queue */
  queue_values(L, cs, queue_entry(L, cs, 1, n), 1, n);
  return 0;
}

/* Releases a timer: unanchors its task and closes the handle. */
static void timer_release(wake_timer *t, int wake) {
  uv_timer_stop(&t->timer);
  if (t->owner) *t->owner = NULL;
  if (wake) {
    resi_wake(t->L, t->task_ref, t->token, 0);
  } else {
    luaL_unref(t->L, LUA_REGISTRYINDEX, t->task_ref);
  }
  uv_close((uv_handle_t *)&t->timer, resi_free_on_close);
}

/* Timer callback: the sleep is over, queue the task. */
static void timer_cb(uv_timer_t *handle) { timer_release((wake_timer *)handle, 1); }

/* core.timer(ms, task, token) -> handle: wakes task with token after ms. */
static int core_timer(lua_State *L) {
  lua_Number ms = luaL_checknumber(L, 1);
  luaL_checkany(L, 2);
  lua_Integer token = luaL_checkinteger(L, 3);
  if (!(ms >= 0)) ms = 0; /* also catches NaN */
  if (ms > 1e15) ms = 1e15;
  void **ud = resi_new_handle(L, TIMER_MT); /* stack: .., ud */
  wake_timer *t = malloc(sizeof *t);
  if (t == NULL) return luaL_error(L, "resi: out of memory");
  uv_timer_init(resi_loop(L), &t->timer);
  t->L = resi_main_state(L);
  t->token = token;
  lua_pushvalue(L, 2);
  t->task_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  t->owner = ud;
  *ud = t;
  /* the loop's cached "now" is from the start of this turn; Lua may have run
   * long since, and a timer based on it would fire early (libuv #1068) */
  uv_update_time(t->timer.loop);
  uv_timer_start(&t->timer, timer_cb, (uint64_t)ceil(ms), 0); /* never shorter than asked */
  return 1;
}

/* timer:stop(): cancels a pending timer; the task is not woken. */
static int timer_stop(lua_State *L) {
  void **ud = luaL_checkudata(L, 1, TIMER_MT);
  if (*ud) timer_release(*ud, 0);
  return 0;
}

/* core.monotonic(): seconds from an arbitrary start, never going back. */
static int core_monotonic(lua_State *L) {
  lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e9);
  return 1;
}

/* core.now(): wall-clock time in seconds since the epoch, with fractions. */
static int core_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

/* core.stop(): makes uv_run return (the main task failed). */
static int core_stop(lua_State *L) {
  uv_stop(resi_loop(L));
  return 0;
}

/* core.add_failure(): counts an error reported outside task:wait; the
 * process then exits non-zero. */
static int core_add_failure(lua_State *L) {
  resi_add_failure(L);
  return 0;
}

/* core.random_bytes(n) -> n bytes from the kernel's generator (for secrets,
 * keys and ids: never math.random). */
static int core_random_bytes(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 0, 1, "must not be negative");
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, (size_t)n);
  if (!resi_random_bytes(p, (size_t)n)) return luaL_error(L, "resi.core.random_bytes: getrandom failed");
  luaL_pushresultsize(&b, (size_t)n); /* stack: n, bytes */
  return 1;
}

/* core.error_text(err [, thread [, level]]) -> the text err becomes, with a
 * traceback of thread (resi_push_error_text: the one rule, also the host's). */
static int core_error_text(lua_State *L) {
  lua_State *co = lua_isthread(L, 2) ? lua_tothread(L, 2) : L;
  int level = (int)luaL_optinteger(L, 3, co == L ? 1 : 0);
  resi_push_error_text(L, co, 1, level); /* stack: err, .., text */
  return 1;
}

/* core.isatty(fd): is the descriptor a terminal? */
static int core_isatty(lua_State *L) {
  lua_pushboolean(L, uv_guess_handle((uv_file)luaL_checkinteger(L, 1)) == UV_TTY);
  return 1;
}

/* core.sd_notify(state) -> true (sent) | false (not run by systemd) |
 * nil, message, "error": a notification to systemd (sd_notify.c). */
static int core_sd_notify(lua_State *L) {
  int rc = resi_sd_notify(luaL_checkstring(L, 1));
  if (rc < 0) return resi_push_fail(L, "error", "sd_notify: %s", strerror(-rc));
  lua_pushboolean(L, rc > 0); /* stack: sent */
  return 1;
}

/* core.bytecode_searcher(lualib_dir, luac_dir) -> searcher: the searcher
 * the host puts in package.searchers (bytecode.c), over other directories:
 * for specs. */
static int core_bytecode_searcher(lua_State *L) {
  resi_push_bytecode_searcher(L, luaL_checkstring(L, 1), luaL_checkstring(L, 2)); /* stack: a, b, searcher */
  return 1;
}

static const luaL_Reg core_funcs[] = {
    {"bytecode_searcher", core_bytecode_searcher},
    {"set_scheduler", core_set_scheduler},
    {"push", core_push},
    {"push_values", core_push_values},
    {"timer", core_timer},
    {"wall_timer", resi_core_wall_timer},
    {"monotonic", core_monotonic},
    {"now", core_now},
    {"stop", core_stop},
    {"add_failure", core_add_failure},
    {"random_bytes", core_random_bytes},
    {"error_text", core_error_text},
    {"isatty", core_isatty},
    {"sd_notify", core_sd_notify},
    {NULL, NULL},
};

int luaopen_resi_core(lua_State *L) {
  static const luaL_Reg timer_methods[] = {{"stop", timer_stop}, {NULL, NULL}};
  resi_new_gc_class(L, TIMER_MT, timer_methods, timer_stop);
  resi_wall_timer_class(L);
  resi_new_gc_class(L, STATE_MT, NULL, state_gc);
  if (get_state(L) == NULL) {
    core_state **slot = resi_new_handle(L, STATE_MT); /* stack: slot */
    core_state *cs = calloc(1, sizeof *cs);
    if (cs == NULL) return luaL_error(L, "resi: out of memory");
    uv_idle_init(resi_loop(L), &cs->idle);
    cs->L = resi_main_state(L);
    cs->sched = (resi_scheduler){core_wake, cs};
    cs->queue_ref = LUA_NOREF;
    cs->head = 1, cs->tail = 0;
    *slot = cs;
    lua_setfield(L, LUA_REGISTRYINDEX, CORE_STATE); /* stack: (empty) */
    lua_pushlightuserdata(L, &cs->sched);
    lua_setfield(L, LUA_REGISTRYINDEX, RESI_REG_SCHED);
  }
  luaL_newlib(L, core_funcs); /* stack: core */
  lua_pushliteral(L, RESI_VERSION);
  lua_setfield(L, -2, "version"); /* stack: core (resi.version reads it: one version string) */
  return 1;
}
