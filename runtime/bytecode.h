/* bytecode.h: the package searcher that loads resi's own modules from the
 * bytecode compiled at build time (bytecode.c). */
#ifndef RESI_BYTECODE_H
#define RESI_BYTECODE_H

#include <lua.h>

/* Pushes a package.searchers function for "resi" and "resi.*" that loads
 * luac_dir/NAME.luac while lualib_dir/NAME.lua exists and is not newer.
 * [-0, +1] */
void resi_push_bytecode_searcher(lua_State *L, const char *lualib_dir, const char *luac_dir);

#endif
