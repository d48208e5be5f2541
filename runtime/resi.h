/* resi.h: what the host and its C modules share.
 *
 * The C modules that are loaded on demand (the HTTP client links libcurl,
 * which costs ~4 ms of start-up, so it is not linked into the binary) find
 * the host's loop and scheduler through the Lua registry, never through
 * exported symbols. Everything here is static inline for that reason; the
 * shared helpers of lutil.h are linked into each module as its own copy. */
#ifndef RESI_H
#define RESI_H

#include <stdio.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "lutil.h"

#define RESI_VERSION "0.1.0"

/* Registry keys set by the host. */
#define RESI_REG_LOOP "resi.loop"   /* light userdata: uv_loop_t* */
#define RESI_REG_WAKE "resi.wake"   /* function(task, token, ...) */
#define RESI_REG_SCHED "resi.sched" /* light userdata: resi_scheduler* (core.c) */

/* The scheduler's C entry point, published by core.c: wake queues a
 * completion (task_ref's task, token, the nargs values on top of L) without
 * calling into Lua. data is core.c's own. */
typedef struct resi_scheduler {
  void (*wake)(struct resi_scheduler *s, lua_State *L, int task_ref, lua_Integer token, int nargs);
  void *data;
} resi_scheduler;

/* The host's event loop, as published in the registry. */
static inline uv_loop_t *resi_loop(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, RESI_REG_LOOP); /* stack: loop */
  uv_loop_t *loop = lua_touserdata(L, -1);
  lua_pop(L, 1); /* stack: (empty) */
  if (loop == NULL) luaL_error(L, "resi: the host loop is not set up");
  return loop;
}

/* The main thread of L: the only state C callbacks may push onto
 * (never a coroutine's state, which may be suspended or collected). */
static inline lua_State *resi_main_state(lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD); /* stack: main */
  lua_State *M = lua_tothread(L, -1);
  lua_pop(L, 1);
  return M;
}

/* Hands the results of a finished operation to the scheduler.
 * Expects the nargs result values on top of L's stack and pops them.
 * The scheduler only queues the task; it is resumed later from the
 * drain step, never from inside this call (so never inside a libcurl or
 * libuv callback). task_ref is released here, exactly once. */
static inline void resi_wake(lua_State *L, int task_ref, lua_Integer token, int nargs) {
  lua_getfield(L, LUA_REGISTRYINDEX, RESI_REG_SCHED); /* stack: args.., sched */
  resi_scheduler *s = lua_touserdata(L, -1);
  lua_pop(L, 1); /* stack: args.. */
  if (s) {
    s->wake(s, L, task_ref, token, nargs);
    return;
  }
  lua_pop(L, nargs); /* the state is closing: nobody is left to wake */
  luaL_unref(L, LUA_REGISTRYINDEX, task_ref);
}

#endif
