/* json.h: what the two halves of resi.json_core share (json.c encodes,
 * json_decode.c decodes). */
#ifndef RESI_JSON_H
#define RESI_JSON_H

#include <lua.h>

/* The metatable that marks a table as a JSON array (so [] stays []). */
#define RESI_JSON_ARRAY_MT "resi.json.array"
/* How deep arrays and objects may nest, both ways. */
#define RESI_JSON_MAX_DEPTH 1000

/* Decodes the escape at p (its backslash; end bounds the text) into out,
 * setting *outlen (1 to 4 bytes: "\u" escapes become UTF-8, a surrogate
 * pair one code point). Returns the bytes it took (2, 6 or 12), 0 when the
 * text ends inside the escape, or -1 with *why when it is invalid
 * (json_escape.c). */
int resi_json_unescape(const char *p, const char *end, char out[4], size_t *outlen, const char **why);

/* Pushes core.decode(text) -> value | nil, message (json_decode.c). */
void resi_json_push_decode(lua_State *L);

#endif
