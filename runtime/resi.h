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
  int base = lua_gettop(L) - nargs;
  lua_getfield(L, LUA_REGISTRYINDEX, RESI_REG_WAKE); /* stack: args.., wake */
  lua_rawgeti(L, LUA_REGISTRYINDEX, task_ref);      /* stack: args.., wake, task */
  lua_pushinteger(L, token);                        /* stack: args.., wake, task, token */
  lua_rotate(L, base + 1, 3);                       /* stack: wake, task, token, args.. */
  luaL_unref(L, LUA_REGISTRYINDEX, task_ref);
  if (lua_pcall(L, nargs + 2, 0, 0) != LUA_OK) {
    /* wake only queues; failing here means memory is exhausted */
    fprintf(stderr, "resi: scheduler wake failed: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
}

#endif
