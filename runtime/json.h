/* json.h: what the two halves of resi.json_core share (json.c encodes,
 * json_decode.c decodes). */
#ifndef RESI_JSON_H
#define RESI_JSON_H

#include <lua.h>

/* The metatable that marks a table as a JSON array (so [] stays []). */
#define RESI_JSON_ARRAY_MT "resi.json.array"
/* How deep arrays and objects may nest, both ways. */
#define RESI_JSON_MAX_DEPTH 1000

/* core.decode(text) -> value | nil, message (json_decode.c). */
int resi_json_decode(lua_State *L);

#endif
