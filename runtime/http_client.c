/* http_client.c: placeholder */
#include "resi.h"
int luaopen_resi_http_core(lua_State *L) { lua_newtable(L); return 1; }
