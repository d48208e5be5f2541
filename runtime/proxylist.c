/* proxylist.c: resi.proxylist_core, the Lua binding of the proxy-list codec.
 *
 * One class per file, as luv has one file per handle kind: a list
 * (resi.proxylist.list, proxylist_list.c) holds one string arena and an
 * array of fixed-size entries, and list[i] builds the entry's table when it
 * is asked for; a reader (resi.proxylist.reader, proxylist_reader.c) takes
 * text chunk by chunk and either builds a list or converts straight to
 * another format, so a file of any size converts in bounded memory. This
 * file is the module: it opens both, and holds the argument checks they
 * share. resi.proxylist (Lua) wraps them with options, files and the list
 * operations written in Lua. */
#include "host.h"
#include "proxylist.h"

/* Checks a format name argument (see proxylist.h). */
int resi_pl_check_format(lua_State *L, int i, const char *def, int allow_auto) {
  const char *name = luaL_optstring(L, i, def);
  int f = resi_pl_format_id(name);
  if (f < 0 || (f == RESI_PL_AUTO && !allow_auto))
    luaL_error(L, "resi.proxylist: unknown format '%s' (expected %slist, userpass, url, json, hostport or proxychains)", name,
               allow_auto ? "auto, " : "");
  return f;
}

/* Raises after a failed allocation. */
int resi_pl_oom(lua_State *L) { return luaL_error(L, "resi.proxylist: out of memory"); }

/* core.random_bytes(n) -> n bytes from the kernel's generator. */
static int random_bytes(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 0 && n <= 65536, 1, "must be 0..65536");
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, (size_t)n);
  if (!resi_random_bytes(p, (size_t)n)) return luaL_error(L, "resi.proxylist: getrandom failed");
  luaL_pushresultsize(&b, (size_t)n); /* stack: n, bytes */
  return 1;
}

/* Opens resi.proxylist_core: its own functions, then each class's. */
int luaopen_resi_proxylist_core(lua_State *L) {
  static const luaL_Reg funcs[] = {{"random_bytes", random_bytes}, {NULL, NULL}};
  luaL_newlib(L, funcs);  /* stack: core */
  resi_pl_list_open(L);   /* stack: core (+ pick, sample, slice, from, methods) */
  resi_pl_reader_open(L); /* stack: core (+ reader) */
  resi_pl_view_open(L);   /* stack: core (+ methods.entries) */
  return 1;
}
