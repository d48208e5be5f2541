/* proxylist.c: placeholder for the proxy-list codec. */
#include "host.h"

int luaopen_resi_proxylist_core(lua_State *L) {
  lua_newtable(L);
  return 1;
}
