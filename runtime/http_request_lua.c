/* http_request_lua.c: the Lua face of a request assembled by http_request.c,
 * one table for every caller (the HTTP server and the sandbox gateways), so
 * both read a request head by the same rules. */
#include "http_request.h"

#include <string.h>

/* Pushes the table of r's headers: lower-case names, values without
 * trailing spaces or tabs, a repeated header's values joined with ", "
 * (RFC 9110 §5.3). */
static void push_headers(lua_State *L, const resi_req *r) {
  lua_createtable(L, 0, (int)r->nheaders); /* stack: headers */
  for (size_t i = 0; i < r->nheaders; i++) {
    const char *v = resi_req_header_value(r, i);
    size_t vlen = strlen(v);
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) vlen--;
    lua_pushstring(L, resi_req_header_name(r, i)); /* stack: headers, name */
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) == LUA_TSTRING) { /* repeated: join with ", " */
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, v, vlen);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushlstring(L, v, vlen);
    } /* stack: headers, name, value */
    lua_rawset(L, -3); /* stack: headers */
  }
}

void resi_req_push(lua_State *L, const resi_req *r) {
  lua_createtable(L, 0, 8); /* stack: req */
  lua_pushstring(L, resi_req_method(r));
  lua_setfield(L, -2, "method");
  lua_pushstring(L, resi_req_url(r));
  lua_setfield(L, -2, "url");
  push_headers(L, r); /* stack: req, headers */
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
  lua_setfield(L, -2, "body");
  lua_pushfstring(L, "%d.%d", r->parser.http_major, r->parser.http_minor);
  lua_setfield(L, -2, "http_version");
  lua_pushboolean(L, r->keep_alive);
  lua_setfield(L, -2, "keep_alive"); /* stack: req */
}
