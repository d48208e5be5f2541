/* proxylist_view.c: list:entries(), the reading loop over a list that
 * builds no table per entry.
 *
 *   for i, p in list:entries() do print(p.host, p.port) end
 *
 * p is a view (resi.proxylist.entry): one userdata per loop, pointed at
 * entry i before each step, whose fields (scheme, host, port, user, pass)
 * are read from the list's arena when asked for. It is the same object at
 * every step, so a loop that keeps entries keeps p:copy() (a plain entry
 * table, as list[i] gives) or i. A view keeps its list alive. */
#include <string.h>

#include "proxylist.h"

#define VIEW_MT "resi.proxylist.entry"

/* A view: the entry it points at (from 1; 0 before the first step). */
typedef struct {
  size_t i;
} pl_view;

/* The view argument at i, and its list (pushed; user value 1). */
static pl_view *check_view(lua_State *L, int i, resi_pl_list **l) {
  pl_view *v = luaL_checkudata(L, i, VIEW_MT);
  lua_getiuservalue(L, i, 1); /* stack: .., list */
  *l = lua_touserdata(L, -1);
  lua_pop(L, 1); /* stack: .. (the view keeps the list alive) */
  if (v->i < 1 || v->i > (*l)->n) luaL_error(L, "resi.proxylist: the entry view is not on an entry");
  return v;
}

/* p:copy() -> the entry as a table {scheme, host, port, user, pass}. */
static int view_copy(lua_State *L) {
  resi_pl_list *l;
  pl_view *v = check_view(L, 1, &l);
  resi_pl_push_entry(L, l->arena.data, &l->e[v->i - 1]); /* stack: view, entry */
  return 1;
}

/* p.name -> the field of the current entry (nil for an absent user or
 * pass), or the method copy. */
static int view_index(lua_State *L) {
  resi_pl_list *l;
  pl_view *v = check_view(L, 1, &l);
  size_t n;
  const char *k = luaL_checklstring(L, 2, &n);
  const resi_pl_entry *e = &l->e[v->i - 1];
  const char *a = l->arena.data;
  if (n == 4 && memcmp(k, "host", 4) == 0) lua_pushlstring(L, a + e->host, e->host_len);
  else if (n == 4 && memcmp(k, "port", 4) == 0) lua_pushinteger(L, e->port);
  else if (n == 4 && memcmp(k, "user", 4) == 0 && (e->flags & RESI_PL_HAS_USER)) lua_pushlstring(L, a + e->user, e->user_len);
  else if (n == 4 && memcmp(k, "pass", 4) == 0 && (e->flags & RESI_PL_HAS_PASS)) lua_pushlstring(L, a + e->pass, e->pass_len);
  else if (n == 6 && memcmp(k, "scheme", 6) == 0) lua_pushstring(L, resi_pl_scheme_names[e->scheme]);
  else if (n == 4 && memcmp(k, "copy", 4) == 0) lua_pushcfunction(L, view_copy);
  else lua_pushnil(L);
  return 1; /* stack: view, name, value */
}

/* A view is read-only: p.x = y is a mistake worth a clear error. */
static int view_newindex(lua_State *L) {
  return luaL_error(L, "resi.proxylist: an entry view is read-only (p:copy() gives a table)");
}

/* tostring(p): scheme, host and port, never credentials. */
static int view_tostring(lua_State *L) {
  resi_pl_list *l;
  pl_view *v = check_view(L, 1, &l);
  const resi_pl_entry *e = &l->e[v->i - 1];
  int v6 = (e->flags & RESI_PL_IPV6) != 0;
  lua_pushlstring(L, l->arena.data + e->host, e->host_len); /* stack: view, host */
  lua_pushfstring(L, "resi.proxylist.entry %d (%s://%s%s%s:%d)", (int)v->i, resi_pl_scheme_names[e->scheme],
                  v6 ? "[" : "", lua_tostring(L, -1), v6 ? "]" : "", (int)e->port); /* stack: view, host, text */
  return 1;
}

/* The loop's step: (list, i) -> i + 1, view, or nothing after the last. */
static int view_next(lua_State *L) {
  resi_pl_list *l = lua_touserdata(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2) + 1;
  if (i < 1 || (size_t)i > l->n) return 0;
  pl_view *v = lua_touserdata(L, lua_upvalueindex(1));
  v->i = (size_t)i;
  lua_pushinteger(L, i);
  lua_pushvalue(L, lua_upvalueindex(1)); /* stack: list, i, i + 1, view */
  return 2;
}

/* list:entries() -> step, list, 0: for i, p in list:entries() (see the top). */
static int list_entries(lua_State *L) {
  resi_pl_check_list(L, 1);
  pl_view *v = lua_newuserdatauv(L, sizeof *v, 1); /* stack: list, view */
  v->i = 0;
  luaL_setmetatable(L, VIEW_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);          /* stack: list, view */
  lua_pushcclosure(L, view_next, 1);    /* stack: list, step */
  lua_pushvalue(L, 1);                  /* stack: list, step, list */
  lua_pushinteger(L, 0);                /* stack: list, step, list, 0 */
  return 3;
}

/* Registers resi.proxylist.entry and adds entries to core.methods (the
 * core table is on the top). */
void resi_pl_view_open(lua_State *L) {
  static const luaL_Reg meta[] = {
      {"__index", view_index}, {"__newindex", view_newindex}, {"__tostring", view_tostring}, {NULL, NULL}};
  resi_new_class(L, VIEW_MT, NULL, meta); /* stack: core */
  lua_getfield(L, -1, "methods");         /* stack: core, methods */
  lua_pushcfunction(L, list_entries);
  lua_setfield(L, -2, "entries");
  lua_pop(L, 1); /* stack: core */
}
