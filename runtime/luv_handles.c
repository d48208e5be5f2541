/* luv_handles.c: closing the luv handles a script left open, before the Lua
 * state goes.
 *
 * luv's close callback calls into the Lua state. When luv owns its loop it
 * closes every handle from the loop's __gc while the state still exists;
 * bound to resi's loop (luv_set_loop) it does not, so a handle still open at
 * exit (an unref'd timer, a listener) was closed by lua_close's __gc and its
 * callback then ran on a freed state. The host therefore remembers each
 * handle luv's constructors make (weakly) and closes the open ones while the
 * state is alive. The loop cannot simply be walked: it also holds resi's own
 * handles, which are not luv's. */
#include "host.h"

#define LUV_HANDLES "resi.luv_handles"

/* luv functions that return a new handle. */
static const char *const constructors[] = {
    "new_timer", "new_prepare", "new_check", "new_idle",     "new_async",    "new_poll",    "new_socket_poll", "new_signal",
    "new_tcp",   "new_pipe",    "new_tty",   "new_udp",      "new_fs_event", "new_fs_poll", "spawn",           NULL};

/* A wrapped constructor: calls luv's (upvalue 1) and remembers the handle it
 * returns. */
static int track_call(lua_State *L) {
  int nargs = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1); /* stack: fn, args.. */
  lua_call(L, nargs, LUA_MULTRET); /* stack: results.. */
  if (lua_type(L, 1) == LUA_TUSERDATA) {
    lua_getfield(L, LUA_REGISTRYINDEX, LUV_HANDLES); /* stack: results.., handles */
    lua_pushvalue(L, 1);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1); /* stack: results.. */
  }
  return lua_gettop(L);
}

void resi_luv_track(lua_State *L) {
  lua_newtable(L); /* stack: luv, handles */
  lua_newtable(L); /* stack: luv, handles, mt */
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2); /* stack: luv, handles */
  lua_setfield(L, LUA_REGISTRYINDEX, LUV_HANDLES); /* stack: luv */
  for (const char *const *name = constructors; *name; name++) {
    if (lua_getfield(L, -1, *name) != LUA_TFUNCTION) { /* stack: luv, fn */
      lua_pop(L, 1);
      continue;
    }
    lua_pushcclosure(L, track_call, 1); /* stack: luv, wrapped */
    lua_setfield(L, -2, *name);         /* stack: luv */
  }
}

/* Calls handle:method() (handle at the stack top) in protected mode;
 * returns its first result as a boolean (false on error). */
static int call_method(lua_State *L, const char *method) {
  lua_getfield(L, -1, method); /* stack: handle, fn */
  lua_pushvalue(L, -2);        /* stack: handle, fn, handle */
  int ok = lua_pcall(L, 1, 1, 0) == LUA_OK && lua_toboolean(L, -1);
  lua_pop(L, 1); /* stack: handle */
  return ok;
}

void resi_luv_close_handles(lua_State *L, uv_loop_t *loop) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, LUV_HANDLES) != LUA_TTABLE) { /* stack: handles */
    lua_pop(L, 1);
    return;
  }
  int closed = 0;
  lua_pushnil(L);
  while (lua_next(L, -2)) { /* stack: handles, handle, true */
    lua_pop(L, 1);          /* stack: handles, handle */
    if (!call_method(L, "is_closing")) {
      call_method(L, "close");
      closed++;
    }
  }
  lua_pop(L, 1); /* stack: (empty) */
  /* one turn of the loop runs the close callbacks of what was just closed */
  if (closed) uv_run(loop, UV_RUN_NOWAIT);
}
