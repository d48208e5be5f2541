/* lutil.c: the shared helpers declared in lutil.h. */
#include "lutil.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

int resi_buf_reserve(resi_buf *b, size_t n) {
  if (b->cap - b->len >= n) return 1;
  if (n > SIZE_MAX - b->len) return 0;
  size_t need = b->len + n, cap = b->cap ? b->cap : 256;
  while (cap < need) {
    if (cap > SIZE_MAX / 2) {
      cap = need;
      break;
    }
    cap *= 2;
  }
  char *p = realloc(b->data, cap);
  if (p == NULL) return 0;
  b->data = p, b->cap = cap;
  return 1;
}

void resi_buf_drop(resi_buf *b, size_t n) {
  if (n == 0) return;
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}

void resi_buf_free(resi_buf *b) {
  free(b->data);
  b->data = NULL, b->len = b->cap = 0;
}

void resi_new_class(lua_State *L, const char *name, const luaL_Reg *methods, const luaL_Reg *meta) {
  luaL_newmetatable(L, name); /* stack: mt (its __name is set) */
  if (meta) luaL_setfuncs(L, meta, 0);
  if (methods) {
    lua_newtable(L); /* stack: mt, methods */
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index"); /* stack: mt */
  }
  lua_pop(L, 1); /* stack: (as before) */
}

void resi_new_gc_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc) {
  const luaL_Reg meta[] = {{"__gc", gc}, {NULL, NULL}};
  resi_new_class(L, name, methods, meta);
}

void *resi_new_handle(lua_State *L, const char *mt) {
  void **slot = lua_newuserdatauv(L, sizeof *slot, 0); /* stack: handle */
  *slot = NULL;
  luaL_setmetatable(L, mt);
  return slot;
}

void resi_set_integer(lua_State *L, const char *key, lua_Integer v) {
  lua_pushinteger(L, v); /* stack: t, v */
  lua_setfield(L, -2, key);
}

int resi_push_fail(lua_State *L, const char *code, const char *fmt, ...) {
  va_list ap;
  lua_pushnil(L);
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_pushstring(L, code);
  return 3; /* stack: nil, message, code */
}

void resi_free_on_close(uv_handle_t *handle) { free(handle); }

lua_Integer resi_failures(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, RESI_REG_FAILED); /* stack: count */
  lua_Integer n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return n;
}

void resi_add_failure(lua_State *L) {
  lua_pushinteger(L, resi_failures(L) + 1); /* stack: count */
  lua_setfield(L, LUA_REGISTRYINDEX, RESI_REG_FAILED);
}

void resi_push_error_text(lua_State *L, lua_State *co, int idx, int level) {
  idx = lua_absindex(L, idx);
  int top = lua_gettop(L);
  const char *msg = lua_tostring(L, idx);
  if (msg == NULL) {
    if (luaL_callmeta(L, idx, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1); /* stack: .., text */
    else
      msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, idx));
  }
  luaL_traceback(L, co, msg, level); /* stack: .., [other result,] [text,] trace */
  lua_insert(L, top + 1);
  lua_settop(L, top + 1); /* stack: .., trace */
}

int resi_msghandler(lua_State *L) {
  resi_push_error_text(L, L, 1, 1); /* stack: err, trace */
  return 1;
}

int resi_random_bytes(void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t k = getrandom((char *)buf + got, n - got, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return 0;
    got += (size_t)k;
  }
  return 1;
}
